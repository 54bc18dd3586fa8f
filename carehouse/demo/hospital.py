"""The whole simulated hospital: every feed for the same days, patients and admissions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from carehouse.core.settings import Settings
from carehouse.demo.admissions import generate_admissions
from carehouse.demo.labs import generate_labs
from carehouse.demo.patients import generate_patients
from carehouse.demo.reference import admissions_per_day


@dataclass(frozen=True)
class DemoOutput:
    """What one `carehouse demo` wrote and sent."""

    admissions_files: int
    patients_files: int
    labs_files: int
    vitals_messages: int | None

    def one_line(self) -> str:
        """For the CLI."""
        vitals = (
            f", {self.vitals_messages:,} vital-sign messages"
            if self.vitals_messages is not None
            else ""
        )
        return (
            f"demo: {self.admissions_files} admissions, {self.patients_files} patient-master "
            f"and {self.labs_files} lab files{vitals}"
        )


def generate_hospital(
    settings: Settings,
    *,
    seed: int,
    end_date: date,
    days: int,
    scale: float,
    vitals: bool = True,
) -> DemoOutput:
    """Write every batch feed into the landing folder and, with `vitals`, send the stream."""
    landing = settings.landing_dir
    admissions = generate_admissions(
        landing,
        seed=seed,
        end_date=end_date,
        days=days,
        admissions_per_day=admissions_per_day(scale),
    )
    patients = generate_patients(landing, seed=seed, end_date=end_date, days=days, scale=scale)
    labs = generate_labs(landing, seed=seed, end_date=end_date, days=days, scale=scale)
    messages = None
    if vitals:
        # Imported here: the producer needs the broker, the file feeds do not.
        from carehouse.demo.vitals import produce_vitals

        messages = produce_vitals(settings, seed=seed, end_date=end_date, days=days, scale=scale)
    return DemoOutput(len(admissions), len(patients), len(labs), messages)
