"""The `carehouse` command line and `carehouse run`: with bench, the only code above flows."""
