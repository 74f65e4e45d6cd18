// The ncurses dashboard (issue: the dashboard).
