// What Telegram makes of a text sent with a parse mode: the plain text it
// shows, or the error it answers ("Bad Request: can't parse entities: ..."),
// for the grammY test kit. Modeled on the Bot API server's parser (TDLib's
// parse_markdown_v2 and parse_html, and their tests): it works on the UTF-8
// bytes, as the server does, so that the byte offsets in its errors are the
// server's. Entities themselves are not kept: the kit needs the text (its
// length, whether it is empty) and the errors.

/** The plain text a parse mode leaves, or why Telegram refuses the markup. */
export type Parsed =
  | { readonly text: string; readonly length: number }
  | { readonly error: string };

/**
 * Parses a text as Telegram does with `parse_mode` (case does not matter;
 * `""` and `"None"` parse nothing; `"Markdown"`, the legacy mode, is not
 * checked: its text is taken as is). `undefined` for a parse mode Telegram
 * does not know.
 */
export function parseMarkup(text: string, mode: string): Parsed | undefined {
  // an empty text is not parsed: its mode is not even read
  if (text === "") return { text, length: 0 };
  switch (modeName(mode)) {
    case "":
    case "markdown":
      return { text, length: text.length };
    case "markdownv2":
      return markdownV2(new TextEncoder().encode(text));
    case "html":
      return html(new TextEncoder().encode(text));
    default:
      return undefined;
  }
}

/** A parse mode as the server reads it: any case, `"None"` as none (`""`). */
export function modeName(mode: string): string {
  const name = mode.toLowerCase();
  return name === "none" ? "" : name;
}

const code = (char: string) => char.charCodeAt(0);
const BACKSLASH = code("\\");
const NEWLINE = code("\n");
const RETURN = code("\r");
const BACKTICK = code("`");

/** The byte at `i`, or 0 past the end (the server reads a C string). */
const at = (bytes: Uint8Array, i: number): number => bytes[i] ?? 0;

/** Blanks as the server sees them (the end of the text is one). */
const isSpace = (c: number) =>
  c === 32 || c === 9 || c === 13 || c === 10 || c === 0 || c === 11;

/** Whether a byte starts a character (is not a UTF-8 continuation byte). */
const starts = (c: number) => (c & 0xc0) !== 0x80;

/** UTF-16 units of the character a first byte starts. */
const units = (c: number) => (c >= 0xf0 ? 2 : 1);

/** The plain text of output bytes. */
function done(out: number[], length: number): Parsed {
  return { text: new TextDecoder().decode(Uint8Array.from(out)), length };
}

const reserved = (c: number) =>
  c === NEWLINE || "_*[]()~`>#+-=|{}.!".includes(String.fromCharCode(c));

type MarkdownEntity =
  | "Bold"
  | "Italic"
  | "Underline"
  | "Strikethrough"
  | "Spoiler"
  | "Code"
  | "Pre"
  | "PreCode"
  | "TextUrl"
  | "CustomEmoji"
  | "BlockQuote";

function markdownV2(bytes: Uint8Array): Parsed {
  const n = bytes.length;
  const out: number[] = [];
  const open: { type: MarkdownEntity; byte: number }[] = [];
  let length = 0;
  let quoted = false; // a block quote is open
  let lineStart = true; // a '>' here starts or goes on with a block quote
  const isReserved = "is reserved and must be escaped with the preceding '\\'";
  const unescaped = (c: number) => ({
    error: `Character '${String.fromCharCode(c)}' ${isReserved}`,
  });
  const unclosed = (entity: { type: MarkdownEntity; byte: number }) => ({
    error:
      `Can't find end of ${entity.type} entity at byte offset ${entity.byte}`,
  });
  /** Reads a link's URL from `i` (after its '('); its end, or -1. */
  const url = (i: number): number => {
    while (i < n && bytes[i] !== code(")")) {
      const next = at(bytes, i + 1);
      i += bytes[i] === BACKSLASH && next > 0 && next <= 126 ? 2 : 1;
    }
    return at(bytes, i) === code(")") ? i : -1;
  };
  for (let i = 0; i < n; i++) {
    const c = bytes[i]!;
    const next = at(bytes, i + 1);
    if (c === BACKSLASH && next > 0 && next <= 126) {
      i++;
      length++;
      out.push(next);
      if (next !== RETURN) lineStart = next === NEWLINE;
      continue;
    }
    const top = open.at(-1);
    const verbatim = top?.type === "Code" || top?.type === "Pre" ||
      top?.type === "PreCode";
    if (verbatim ? c !== BACKTICK : !reserved(c)) {
      if (starts(c)) {
        length += units(c);
        if (c !== RETURN) lineStart = false;
      }
      out.push(c);
      continue;
    }
    const ends = top !== undefined &&
      ((quoted && c === NEWLINE && next !== code(">")) ||
        closes(top.type, c, next, at(bytes, i + 2)));
    if (!ends) {
      const byte = i;
      let type: MarkdownEntity;
      switch (String.fromCharCode(c)) {
        case "_":
          if (next === code("_")) {
            type = "Underline";
            i++;
          } else type = "Italic";
          break;
        case "*":
          type = "Bold";
          break;
        case "~":
          type = "Strikethrough";
          break;
        case "|":
          if (next !== code("|")) return unescaped(c);
          type = "Spoiler";
          i++;
          break;
        case "[":
          type = "TextUrl";
          break;
        case "`":
          if (next === BACKTICK && at(bytes, i + 2) === BACKTICK) {
            i += 3;
            type = "Pre";
            let end = i;
            while (!isSpace(at(bytes, end)) && at(bytes, end) !== BACKTICK) {
              end++;
            }
            if (end !== i && end < n && at(bytes, end) !== BACKTICK) {
              type = "PreCode"; // the word after ``` is its language
              i = end;
            }
            // one line break after the opening is not part of the text
            const first = at(bytes, i);
            if (first === NEWLINE || first === RETURN) {
              const second = at(bytes, i + 1);
              i += (second === NEWLINE || second === RETURN) && first !== second
                ? 2
                : 1;
            }
            i--;
          } else type = "Code";
          break;
        case "!":
          if (next !== code("[")) return unescaped(c);
          type = "CustomEmoji";
          i++;
          break;
        case "\n":
          length++;
          out.push(c);
          lineStart = true;
          continue;
        case ">":
          if (!lineStart) return unescaped(c);
          if (quoted) continue; // the quote goes on on this line
          type = "BlockQuote";
          quoted = true;
          break;
        default:
          return unescaped(c);
      }
      open.push({ type, byte });
      continue;
    }
    // the end of the innermost entity
    let type = top.type;
    if (c === NEWLINE && type !== "BlockQuote") {
      // a line that does not go on with the quote ends it: only a spoiler
      // just opened there (the "||" of an expandable quote) may be open
      const justOpened = top.byte === i - 2 ||
        (top.byte === i - 3 && out.at(-1) === RETURN);
      if (type !== "Spoiler" || !justOpened) return unclosed(top);
      open.pop();
      if (open.at(-1)!.type !== "BlockQuote") return unclosed(open.at(-1)!);
      type = "BlockQuote";
    }
    switch (type) {
      case "Underline":
      case "Spoiler":
        i++;
        break;
      case "Pre":
      case "PreCode":
        i += 2;
        break;
      case "TextUrl":
        if (next === code("(")) {
          const end = url(i + 2);
          if (end < 0) {
            return { error: `Can't find end of a URL at byte offset ${i + 2}` };
          }
          i = end; // a URL Telegram cannot use only drops the link
        }
        break;
      case "CustomEmoji": {
        if (next !== code("(")) {
          return { error: "Custom emoji entity must contain a tg://emoji URL" };
        }
        const end = url(i + 2);
        if (end < 0) {
          return {
            error: `Can't find end of a custom emoji URL at byte offset ${
              i + 2
            }`,
          };
        }
        const wrong = emojiUrlError(unescape(bytes.subarray(i + 2, end)));
        if (wrong !== undefined) return { error: wrong };
        i = end;
        break;
      }
      case "BlockQuote":
        quoted = false;
        out.push(c);
        lineStart = true;
        length++;
        break;
    }
    open.pop();
  }
  if (quoted) {
    const top = open.at(-1)!;
    if (top.type === "Spoiler" && top.byte === n - 2) open.pop();
    if (open.at(-1)?.type === "BlockQuote") open.pop();
  }
  const left = open.at(-1);
  return left === undefined ? done(out, length) : unclosed(left);
}

/** Whether a byte (and those after it) closes an entity of this type. */
function closes(
  type: MarkdownEntity,
  c: number,
  next: number,
  after: number,
): boolean {
  switch (type) {
    case "Bold":
      return c === code("*");
    case "Italic":
      return c === code("_") && next !== code("_");
    case "Underline":
      return c === code("_") && next === code("_");
    case "Strikethrough":
      return c === code("~");
    case "Spoiler":
      return c === code("|") && next === code("|");
    case "Code":
      return c === BACKTICK;
    case "Pre":
    case "PreCode":
      return c === BACKTICK && next === BACKTICK && after === BACKTICK;
    case "TextUrl":
    case "CustomEmoji":
      return c === code("]");
    case "BlockQuote":
      return false;
  }
}

/** A URL's bytes with its backslash escapes undone, as a string. */
function unescape(bytes: Uint8Array): string {
  const out: number[] = [];
  for (let i = 0; i < bytes.length; i++) {
    const next = at(bytes, i + 1);
    if (bytes[i] === BACKSLASH && next > 0 && next <= 126) {
      out.push(next);
      i++;
    } else out.push(bytes[i]!);
  }
  return new TextDecoder().decode(Uint8Array.from(out));
}

/**
 * Why a custom emoji's URL is not `tg://emoji?id=<id>`, or `undefined`, as
 * the server reads it: lowercased, `tg:`, `//` or not, the host `emoji`, a
 * `/` or not, then the query up to a `#`, split on `&` and `=` (not
 * percent-decoded).
 */
function emojiUrlError(url: string): string | undefined {
  const lower = url.toLowerCase();
  if (!lower.startsWith("tg:")) return "Custom emoji URL must have scheme tg";
  let rest = lower.slice(3);
  if (rest.startsWith("//")) rest = rest.slice(2);
  const host = /^[^/?#]*/.exec(rest)![0];
  if (host !== "emoji") return 'Custom emoji URL must have host "emoji"';
  rest = rest.slice(host.length);
  if (rest.startsWith("/")) rest = rest.slice(1);
  const noId = "Custom emoji URL must have an emoji identifier";
  if (!rest.startsWith("?")) return noId;
  const query = rest.slice(1).split("#")[0]!;
  const id = query.split("&").map((pair) => pair.split("="))
    .find(([name]) => name === "id")?.[1];
  if (id === undefined) return noId;
  return emojiId(id) ? undefined : "Invalid custom emoji identifier specified";
}

/** Whether a custom emoji id is a 64-bit integer other than 0, written plainly. */
function emojiId(id: string): boolean {
  return /^-?[1-9][0-9]{0,18}$/.test(id) &&
    BigInt(id) <= 9_223_372_036_854_775_807n &&
    BigInt(id) >= -9_223_372_036_854_775_808n;
}

/**
 * How Telegram counts a text's length and blankness, once parsed: carriage
 * returns, U+2028-U+202E and three combining marks removed, control
 * characters made blanks, blanks trimmed at both ends (the server keeps
 * leading ones before an entity: counted without them, a text is never
 * refused that Telegram takes), counted in code points.
 */
export function shownLength(text: string): number {
  return [...clean(text).trim()].length;
}

/**
 * Whether Telegram takes a text as empty ("message text is empty"): nothing
 * but blanks, zero-width characters, direction marks, the byte order mark,
 * the braille blank and language tags, once cleaned.
 */
export function isBlank(text: string): boolean {
  return BLANK.test(clean(text));
}

/** A text as the server cleans it before anything else. */
function clean(text: string): string {
  return text.replace(/\r|[\u2028-\u202E\u0333\u033F\u030A]/g, "")
    // deno-lint-ignore no-control-regex
    .replace(/[\u0000-\u0009\u000B\u000C\u000E-\u001F]/g, " ");
}

/** What Telegram counts as nothing in a text. */
const BLANK =
  /^[\s\u00A0\u1680\u180E\u2000-\u200F\u202E\u202F\u205F\u2800\u3000\uFEFF\uFFFC\u{E0000}-\u{E007F}]*$/u;

const HTML_TAGS = new Set([
  "a",
  "b",
  "strong",
  "i",
  "em",
  "s",
  "strike",
  "del",
  "u",
  "ins",
  "tg-spoiler",
  "tg-emoji",
  "span",
  "pre",
  "code",
  "blockquote",
]);

/**
 * The character an HTML entity at `bytes[i]` ('&') stands for and the index
 * after it, or `undefined` when the server takes the '&' as it is (an entity
 * it does not know, a number out of range).
 */
function entityAt(
  bytes: Uint8Array,
  i: number,
): { code: number; end: number } | undefined {
  let end = i + 1;
  let value = 0;
  if (at(bytes, i + 1) === code("#")) {
    end++;
    const hex = at(bytes, i + 2) === code("x");
    if (hex) end++;
    const digit = hex ? /[0-9a-fA-F]/ : /[0-9]/;
    while (digit.test(String.fromCharCode(at(bytes, end)))) {
      value = value * (hex ? 16 : 10) +
        parseInt(String.fromCharCode(bytes[end]!), 16);
      if (value > 0x10ffff) value = 0x10ffff; // refused below, not overflowing
      end++;
    }
    if (value === 0 || value >= 0x10ffff || end - i >= 10) return undefined;
  } else {
    while (/[a-zA-Z]/.test(String.fromCharCode(at(bytes, end)))) end++;
    const name = new TextDecoder().decode(bytes.subarray(i + 1, end));
    const named: Record<string, string> = {
      lt: "<",
      gt: ">",
      amp: "&",
      quot: '"',
    };
    if (!Object.hasOwn(named, name)) return undefined;
    value = code(named[name]!);
  }
  return { code: value, end: at(bytes, end) === code(";") ? end + 1 : end };
}

function html(bytes: Uint8Array): Parsed {
  const n = bytes.length;
  // the server lowercases ASCII letters only
  const text = (from: number, to: number) =>
    new TextDecoder().decode(bytes.subarray(from, to)).replace(
      /[A-Z]+/g,
      (letters) => letters.toLowerCase(),
    );
  let result = "";
  let plain = 0; // where the bytes copied as they are begin
  let length = 0;
  let surrogate = false;
  const open: { tag: string; argument: string; length: number }[] = [];
  const flush = (to: number) => {
    result += new TextDecoder().decode(bytes.subarray(plain, to));
  };
  for (let i = 0; i < n; i++) {
    const c = bytes[i]!;
    if (c === code("&")) {
      const entity = entityAt(bytes, i);
      if (entity !== undefined) {
        flush(i);
        length += entity.code > 0xffff ? 2 : 1;
        if (entity.code >= 0xd800 && entity.code <= 0xdfff) surrogate = true;
        result += String.fromCodePoint(entity.code);
        plain = entity.end;
        i = entity.end - 1;
        continue;
      }
    }
    if (c !== code("<")) {
      if (starts(c)) length += units(c);
      continue;
    }
    flush(i);
    const begin = i++;
    if (at(bytes, i) !== code("/")) {
      while (!isSpace(at(bytes, i)) && at(bytes, i) !== code(">")) i++;
      if (at(bytes, i) === 0) {
        return { error: `Unclosed start tag at byte offset ${begin}` };
      }
      const tag = text(begin + 1, i);
      if (!HTML_TAGS.has(tag)) {
        return {
          error: `Unsupported start tag "${tag}" at byte offset ${begin}`,
        };
      }
      const unclosed = {
        error: `Unclosed start tag "${tag}" at byte offset ${begin}`,
      };
      let argument = "";
      while (at(bytes, i) !== code(">")) {
        while (at(bytes, i) !== 0 && isSpace(at(bytes, i))) i++;
        if (at(bytes, i) === code(">")) break;
        const nameBegin = i;
        while (
          !isSpace(at(bytes, i)) &&
          !"=>/\"'".includes(String.fromCharCode(at(bytes, i)))
        ) i++;
        const name = new TextDecoder().decode(bytes.subarray(nameBegin, i));
        if (name === "") {
          return {
            error:
              `Empty attribute name in the tag "${tag}" at byte offset ${begin}`,
          };
        }
        while (at(bytes, i) !== 0 && isSpace(at(bytes, i))) i++;
        if (at(bytes, i) !== code("=")) {
          if (at(bytes, i) === 0) return unclosed;
          if (tag === "blockquote" && name === "expandable") argument = "1";
          continue;
        }
        i++;
        while (at(bytes, i) !== 0 && isSpace(at(bytes, i))) i++;
        if (at(bytes, i) === 0) return unclosed;
        let value = "";
        const quote = at(bytes, i);
        if (quote !== code("'") && quote !== code('"')) {
          // a name token: letters, digits, periods and hyphens
          const token = i;
          while (/[a-zA-Z0-9.-]/.test(String.fromCharCode(at(bytes, i)))) i++;
          value = text(token, i);
          if (!isSpace(at(bytes, i)) && at(bytes, i) !== code(">")) {
            return {
              error: `Unexpected end of name token at byte offset ${token}`,
            };
          }
        } else {
          i++;
          let from = i;
          while (at(bytes, i) !== quote && at(bytes, i) !== 0) {
            const entity = at(bytes, i) === code("&")
              ? entityAt(bytes, i)
              : undefined;
            if (entity === undefined) {
              i++;
              continue;
            }
            value += new TextDecoder().decode(bytes.subarray(from, i)) +
              String.fromCodePoint(entity.code);
            i = from = entity.end;
          }
          value += new TextDecoder().decode(bytes.subarray(from, i));
          if (at(bytes, i) === quote) i++;
        }
        if (at(bytes, i) === 0) {
          return { error: `Unclosed start tag at byte offset ${begin}` };
        }
        if (tag === "a" && name === "href") argument = value;
        else if (
          tag === "span" && name === "class" && value.startsWith("tg-")
        ) argument = value.slice(3);
        else if (tag === "tg-emoji" && name === "emoji-id") argument = value;
        else if (tag === "blockquote" && name === "expandable") argument = "1";
      }
      if (tag === "span" && argument !== "spoiler") {
        return {
          error:
            `Tag "span" must have class "tg-spoiler" at byte offset ${begin}`,
        };
      }
      open.push({ tag, argument, length });
    } else {
      if (open.length === 0) {
        return { error: `Unexpected end tag at byte offset ${begin}` };
      }
      while (!isSpace(at(bytes, i)) && at(bytes, i) !== code(">")) i++;
      const name = text(begin + 2, i);
      while (isSpace(at(bytes, i)) && at(bytes, i) !== 0) i++;
      if (at(bytes, i) !== code(">")) {
        return { error: `Unclosed end tag at byte offset ${begin}` };
      }
      const top = open.pop()!;
      if (name !== "" && name !== top.tag) {
        return {
          error:
            `Unmatched end tag at byte offset ${begin}, expected "</${top.tag}>", found "</${name}>"`,
        };
      }
      if (
        top.tag === "tg-emoji" && length > top.length && !emojiId(top.argument)
      ) return { error: "Invalid custom emoji identifier specified" };
    }
    plain = i + 1;
  }
  flush(n);
  const left = open.at(-1);
  if (left !== undefined) {
    return {
      error: `Can't find end tag corresponding to start tag "${left.tag}"`,
    };
  }
  // the server writes each as UTF-8 on its own, which no pair makes valid
  if (surrogate) {
    return {
      error:
        "Text contains invalid Unicode characters after decoding HTML entities, check for unmatched surrogate code units",
    };
  }
  return { text: result, length };
}
