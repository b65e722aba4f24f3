/* pgserver: client-supplied strings made safe for a log line. */
#ifndef PGSERVER_ESCAPE_H
#define PGSERVER_ESCAPE_H

#include <stddef.h>

/* Also escape backslash and double quote: for a string the caller puts
 * between double quotes, so a reader can tell where it ends. */
#define PGS_ESC_QUOTED 1

/* Copies len bytes of src into dst as one line of valid UTF-8: control
 * bytes (C0, DEL, C1), and bytes that are not part of well-formed UTF-8,
 * become \xNN; so do U+2028 and U+2029, which some viewers take as line
 * ends. Printable UTF-8 is kept. Always NUL-terminates dst (cap > 0); a
 * result cut to fit ends in "..." and never splits an escape or a
 * character. Returns dst. */
char *pgs_escape(char *dst, size_t cap, const char *src, size_t len, int flags);

#endif
