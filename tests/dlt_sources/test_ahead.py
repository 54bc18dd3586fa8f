"""Files read ahead in parallel: the same blocks, in the same order, errors where they belong."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from dlt_sources._common.ahead import read_ahead


def blocks_of(file: int) -> Iterator[tuple[int, int]]:
    for block in range(file % 4 + 1):
        yield file, block


@pytest.mark.parametrize("workers", [1, 2, 3])
@pytest.mark.parametrize("depth", [1, 2])
def test_blocks_come_in_file_order_as_if_read_one_by_one(workers: int, depth: int) -> None:
    files = list(range(9))
    expected = [block for file in files for block in blocks_of(file)]
    assert list(read_ahead(files, blocks_of, workers=workers, depth=depth)) == expected


def test_an_error_is_raised_when_its_file_is_reached() -> None:
    def failing(file: int) -> Iterator[tuple[int, int]]:
        yield file, 0
        if file == 2:
            raise ValueError("file 2 is broken")
        yield file, 1

    seen: list[tuple[int, int]] = []
    with pytest.raises(ValueError, match="file 2 is broken"):
        for block in read_ahead(range(5), failing, workers=2):
            seen.append(block)
    assert seen == [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0)]


def test_stopping_early_stops_the_workers() -> None:
    started: list[int] = []
    lock = threading.Lock()

    def endless(file: int) -> Iterator[int]:
        with lock:
            started.append(file)
        while True:
            yield file

    reader = read_ahead(range(100), endless, workers=2, depth=1)
    assert next(reader) == 0
    reader.close()  # returns only once the workers have ended
    assert len(started) <= 3
