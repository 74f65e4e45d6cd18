// ncursesw for Swift: SwiftPM drops pkg-config's -D flags, so the wide API is asked for here.
#ifndef IPVSTOP_CNCURSES_SHIM_H
#define IPVSTOP_CNCURSES_SHIM_H
#define NCURSES_WIDECHAR 1
#include <locale.h>
#include <ncursesw/curses.h>
#endif
