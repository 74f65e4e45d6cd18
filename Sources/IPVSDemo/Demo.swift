// The built-in simulated director for --demo (issue: the dashboard).
