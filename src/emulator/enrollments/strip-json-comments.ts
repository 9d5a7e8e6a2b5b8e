// The configuration file may carry comments, as docs/emulator.md shows it (JSONC): `// to the end of the
// line` and `/* block */` outside strings. They become spaces (newlines kept), so JSON.parse's positions
// in an error message still point at the right line and column of the file.

/** The text with every comment outside a string blanked out; an unterminated block comment is an error. */
export function stripJsonComments(text: string): string {
  let out = '';
  let index = 0;
  let copiedUpTo = 0;
  const blank = (end: number): void => {
    out += text.slice(copiedUpTo, index) + text.slice(index, end).replace(/[^\r\n]/g, ' ');
    index = end;
    copiedUpTo = end;
  };
  while (index < text.length) {
    const char = text[index];
    if (char === '"') {
      // Skip the string, escapes included: `"a // b"` and `"\"//"` are not comments.
      index++;
      while (index < text.length && text[index] !== '"') index += text[index] === '\\' ? 2 : 1;
      index++;
    } else if (char === '/' && text[index + 1] === '/') {
      const newline = text.indexOf('\n', index);
      blank(newline < 0 ? text.length : newline);
    } else if (char === '/' && text[index + 1] === '*') {
      const close = text.indexOf('*/', index + 2);
      if (close < 0) {
        const line = text.slice(0, index).split('\n').length;
        throw new SyntaxError(`a /* comment opened on line ${line} is never closed`);
      }
      blank(close + 2);
    } else {
      index++;
    }
  }
  return out + text.slice(copiedUpTo);
}
