// Shared by the property tests: the dirt a hostile kubelet or Event author plants in text.
import fc from 'fast-check';

/** One C0 or C1 control, an ANSI/VT escape sequence, a CR or CR LF, or a lone surrogate. */
export const dirt: fc.Arbitrary<string> = fc.oneof(
  fc.integer({ min: 0, max: 0x1f }).map((c) => String.fromCharCode(c)),
  fc.integer({ min: 0x7f, max: 0x9f }).map((c) => String.fromCharCode(c)),
  fc.constantFrom('\u001b[31m', '\u001b[0m', '\u001b[2J\u001b[H', '\u009b1;31m', '\u001b]0;pwned\u0007', '\u001b]8;;http://x\u001b\\', '\u001b[?25l', '\r\n', '\r'),
  fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)),
);

/** Plain text with dirt planted anywhere in it. */
export const dirty: fc.Arbitrary<string> = fc
  .tuple(fc.array(fc.tuple(fc.string({ maxLength: 12 }), dirt), { minLength: 1, maxLength: 6 }), fc.string({ maxLength: 12 }))
  .map(([pieces, tail]) => pieces.map(([text, d]) => text + d).join('') + tail);
