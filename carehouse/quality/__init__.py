"""Quality gates over the Soda contracts, their reports and audit rows, and gold's freshness."""
