// Text from files (names, header bytes, JSON strings) printed to a terminal. A file name or a header
// may hold NUL, ESC or other control characters; written raw, ESC sequences would move the cursor,
// recolour or retitle the terminal, and NUL or CR would hide part of the message. `printable`
// escapes them so an error message shows exactly which bytes were there.

/** C0 controls, DEL, C1 controls, and the Unicode line/paragraph separators and bidi overrides. */
// eslint-disable-next-line no-control-regex
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const NAMED: Record<string, string> = { "\0": "\\0", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\x1b": "\\e" };

/**
 * `s` with every control character escaped: NUL → \0, tab → \t, newline → \n, CR → \r, ESC → \e,
 * any other as \xHH (below U+0100) or \u{HHHH}; a backslash stays a backslash (no escaping of it,
 * so ordinary Windows paths print unchanged).
 */
export function printable(s: string): string {
  return s.replace(UNPRINTABLE, (c) => {
    const named = NAMED[c];
    if (named !== undefined) return named;
    const code = c.charCodeAt(0);
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u{${code.toString(16)}}`;
  });
}

/** At most `max` characters of `s`, made printable, with "…" when cut (for quoting file contents). */
export function printableExcerpt(s: string, max = 40): string {
  const cut = s.length > max ? s.slice(0, max) : s;
  return printable(cut) + (cut.length < s.length ? "…" : "");
}
