// ncursesw for Swift: SwiftPM drops pkg-config's -D flags, so the wide API is asked for here.
// Macros and globals Swift cannot reach (or that trip Swift 6's global-state checks) are
// wrapped in small static inline functions.
#ifndef IPVSTOP_CNCURSES_SHIM_H
#define IPVSTOP_CNCURSES_SHIM_H
#define NCURSES_WIDECHAR 1
#include <locale.h>
#include <langinfo.h>
#include <string.h>
#include <wchar.h>
#include <ncursesw/curses.h>

static inline WINDOW *ipvstop_stdscr(void) { return stdscr; }
static inline WINDOW *ipvstop_curscr(void) { return curscr; }
static inline int ipvstop_lines(void) { return LINES; }
static inline int ipvstop_cols(void) { return COLS; }
static inline int ipvstop_colors(void) { return COLORS; }

static inline attr_t ipvstop_a_normal(void) { return A_NORMAL; }
static inline attr_t ipvstop_a_bold(void) { return A_BOLD; }
static inline attr_t ipvstop_a_reverse(void) { return A_REVERSE; }
static inline attr_t ipvstop_a_dim(void) { return A_DIM; }
static inline attr_t ipvstop_a_underline(void) { return A_UNDERLINE; }

static inline int ipvstop_key_code_yes(void) { return KEY_CODE_YES; }
static inline int ipvstop_key_f(int n) { return KEY_F(n); }

/// Sets the locale from the environment (before initscr) and says whether it is UTF-8.
static inline int ipvstop_setlocale_utf8(void) {
    setlocale(LC_ALL, "");
    const char *cs = nl_langinfo(CODESET);
    return cs != NULL && (strcmp(cs, "UTF-8") == 0 || strcmp(cs, "utf8") == 0);
}

/// Writes one character with its attributes and colour pair at (y, x) of stdscr.
static inline int ipvstop_put(int y, int x, wchar_t ch, attr_t attr, short pair) {
    cchar_t c;
    wchar_t w[2] = { ch, 0 };
    setcchar(&c, w, attr, pair, NULL);
    return mvwadd_wch(stdscr, y, x, &c);
}

/// Reads a key: OK with a character, KEY_CODE_YES with a key code, ERR on timeout.
static inline int ipvstop_get(wint_t *out) { return wget_wch(stdscr, out); }

#endif
