// The markup the grammY test kit reads as Telegram does: the cases are the
// behaviour of the Bot API server's parser (TDLib's parse_markdown_v2 and
// parse_html), byte offsets included.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseMarkup } from "./markup.ts";

const reserved = (char: string) =>
  `Character '${char}' is reserved and must be escaped with the preceding '\\'`;
const text = (parsed: ReturnType<typeof parseMarkup>) =>
  parsed && "text" in parsed ? parsed.text : parsed;
const error = (parsed: ReturnType<typeof parseMarkup>) =>
  parsed && "error" in parsed ? parsed.error : parsed;

describe("MarkdownV2 as Telegram reads it", () => {
  it("refuses each reserved character that is not escaped, and takes it escaped", () => {
    for (const char of "]()#+-=|{}.!") {
      assert.equal(error(parseMarkup(char, "MarkdownV2")), reserved(char));
      assert.equal(text(parseMarkup(`\\${char}`, "MarkdownV2")), char);
    }
    for (const char of "abc 1,;:?@'\"/&%$^<") {
      assert.equal(text(parseMarkup(char, "MarkdownV2")), char);
    }
    assert.equal(
      error(parseMarkup("Version 1.0", "MarkdownV2")),
      reserved("."),
    );
    assert.equal(error(parseMarkup("🏟 🏟!", "MarkdownV2")), reserved("!"));
    assert.equal(error(parseMarkup("🏟 🏟>", "MarkdownV2")), reserved(">"));
    assert.equal(error(parseMarkup(">\n*a*>2", "MarkdownV2")), reserved(">"));
  });

  it("names an entity left open and its byte offset", () => {
    const cases: [string, string][] = [
      ["🏟 🏟_abacaba", "Italic entity at byte offset 9"],
      ["🏟 🏟_abac * asd ", "Bold entity at byte offset 15"],
      ["🏟 🏟_abac * asd _", "Italic entity at byte offset 21"],
      ["🏟 🏟`", "Code entity at byte offset 9"],
      ["🏟 🏟```", "Pre entity at byte offset 9"],
      ["🏟 🏟```a", "Pre entity at byte offset 9"],
      ["🏟 🏟```a ", "PreCode entity at byte offset 9"],
      ["🏟 🏟__🏟 🏟_", "Italic entity at byte offset 20"],
      ["🏟 🏟_🏟 🏟__", "Underline entity at byte offset 19"],
      ["🏟 🏟```🏟 🏟`", "Code entity at byte offset 21"],
      ["🏟 🏟```🏟 🏟_", "PreCode entity at byte offset 9"],
      ["🏟 🏟```🏟 🏟\\`", "PreCode entity at byte offset 9"],
      ["🏟 🏟__🏟 _🏟___", "Italic entity at byte offset 23"],
      ["🏟 🏟__", "Underline entity at byte offset 9"],
      ["🏟 🏟||test\\|", "Spoiler entity at byte offset 9"],
      ["🏟 🏟![", "CustomEmoji entity at byte offset 9"],
      ["🏟 🏟![👍", "CustomEmoji entity at byte offset 9"],
      [">*b\n>ld \n>bo\nld*\nasd\ndef", "Bold entity at byte offset 1"],
      [">asd\n>q||e||w||\n||asdad", "Spoiler entity at byte offset 16"],
      [">asd\n>q||ew\n||asdad", "Spoiler entity at byte offset 7"],
      [">asd\n>q||e||w__\n||asdad", "Underline entity at byte offset 13"],
      [">asd\n>q||e||w||a\n||asdad", "Spoiler entity at byte offset 13"],
    ];
    for (const [markup, what] of cases) {
      assert.equal(
        error(parseMarkup(markup, "MarkdownV2")),
        `Can't find end of ${what}`,
        markup,
      );
    }
  });

  it("checks link and custom emoji URLs", () => {
    const cases: [string, string][] = [
      ["[telegram\\.org](asd\\)", "Can't find end of a URL at byte offset 16"],
      ["[telegram\\.org](", "Can't find end of a URL at byte offset 16"],
      ["🏟 🏟![👍]", "Custom emoji entity must contain a tg://emoji URL"],
      [
        "🏟 🏟![👍](tg://emoji?id=1234",
        "Can't find end of a custom emoji URL at byte offset 17",
      ],
      ["🏟 🏟![👍](t://emoji?id=1234)", "Custom emoji URL must have scheme tg"],
      [
        "🏟 🏟![👍](tg:emojis?id=1234)",
        'Custom emoji URL must have host "emoji"',
      ],
      [
        "🏟 🏟![👍](tg://emoji#test)",
        "Custom emoji URL must have an emoji identifier",
      ],
      [
        "🏟 🏟![👍](tg://emoji?test=1#&id=25)",
        "Custom emoji URL must have an emoji identifier",
      ],
      [
        "🏟 🏟![👍](tg://emoji?test=1231&id=025)",
        "Invalid custom emoji identifier specified",
      ],
      // read as the server reads it: one "/" at most after the host, then
      // the query, not percent-decoded
      [
        "![a](tg://emoji/abc?id=5)",
        "Custom emoji URL must have an emoji identifier",
      ],
      [
        "![a](tg://emoji//?id=5)",
        "Custom emoji URL must have an emoji identifier",
      ],
      [
        "![a](tg://emoji?%69d=5)",
        "Custom emoji URL must have an emoji identifier",
      ],
      ["![a](tg://emoji?id=%35)", "Invalid custom emoji identifier specified"],
    ];
    for (const [markup, message] of cases) {
      assert.equal(error(parseMarkup(markup, "MarkdownV2")), message, markup);
    }
  });

  it("takes a custom emoji URL in any case, and a negative id", () => {
    for (
      const url of [
        "tg://emoji?ID=5368324170671202286",
        "tg://emoji?id=-5",
        "TG:EMOJI/?id=1",
      ]
    ) {
      assert.equal(text(parseMarkup(`![a](${url})`, "MarkdownV2")), "a", url);
    }
    assert.equal(
      text(parseMarkup('<tg-emoji emoji-id="-5">a</tg-emoji>', "HTML")),
      "a",
    );
  });

  it("leaves the plain text Telegram shows", () => {
    const cases: [string, string][] = [
      ["", ""],
      ["\\\\", "\\"],
      ["\\\\\\\\\\_\\*\\`", "\\\\_*`"],
      ["🏟 🏟``", "🏟 🏟"],
      ["🏟 🏟_abac \\* asd _", "🏟 🏟abac * asd "],
      ["🏟 🏟```🏟 🏟```", "🏟 🏟 🏟"],
      ["🏟 🏟```🏟\n🏟```", "🏟 🏟🏟"],
      ["🏟 🏟```🏟\r\n🏟```", "🏟 🏟🏟"],
      ["🏟 🏟```🏟\n\n🏟```", "🏟 🏟\n🏟"],
      ["🏟 🏟```🏟 \\\\\\`🏟```", "🏟 🏟 \\`🏟"],
      ["||test||", "test"],
      ["`_* *_`__*` `*__", "_* *_ "],
      ["[telegram\\.org](https://telegram.dog?\\\\\\()", "telegram.org"],
      ["[telegram\\.org](asdasd)", "telegram.org"],
      ["🏟 🏟![👍](TG://EMoJI/?test=1231&id=25#id=32)a", "🏟 🏟👍a"],
      ["> \n> \n>", " \n \n"],
      ["abc\n> \n> \n>\ndef", "abc\n \n \n\ndef"],
      [">", ""],
      ["\r>a", "\ra"],
      [">*b\n>ld \n>bo\n>ld*\nasd\ndef", "b\nld \nbo\nld\nasd\ndef"],
      [">`b\n>ld \n>bo\nld`\n>asd\ndef", "b\n>ld \n>bo\nld\nasd\ndef"],
      [">\n**>2", "\n2"],
      [">asd\n>q||e||w||\nasdad", "asd\nqew\nasdad"],
      [">asd\r\n>q||e||w||\r\n", "asd\r\nqew\r\n"],
      [">||", ""],
      ["*Price:* 10\\.50 €", "Price: 10.50 €"],
    ];
    for (const [markup, plain] of cases) {
      const parsed = parseMarkup(markup, "MarkdownV2");
      assert.equal(text(parsed), plain, markup);
      assert.equal(parsed && "length" in parsed && parsed.length, plain.length);
    }
  });
});

describe("HTML as Telegram reads it", () => {
  it("refuses malformed or unsupported markup, naming the byte offset", () => {
    const surrogate =
      "Text contains invalid Unicode characters after decoding HTML entities, check for unmatched surrogate code units";
    const cases: [string, string][] = [
      ["&#57311;", surrogate],
      ["&#xDFDF;", surrogate],
      ["&#xDFDF", surrogate],
      ["&#xD83D;&#xDE00;", surrogate],
      ["🏟 🏟&lt;<abacaba", "Unclosed start tag at byte offset 13"],
      ["🏟 🏟&lt;<abac aba>", 'Unsupported start tag "abac" at byte offset 13'],
      ["🏟 🏟&lt;<abac>", 'Unsupported start tag "abac" at byte offset 13'],
      ["<br>", 'Unsupported start tag "br" at byte offset 0'],
      // ASCII letters only are lowercased
      ["<İ>x</İ>", 'Unsupported start tag "İ" at byte offset 0'],
      [
        "🏟 🏟&lt;<i   =aba>",
        'Empty attribute name in the tag "i" at byte offset 13',
      ],
      [
        "🏟 🏟&lt;<i    aba>",
        'Can\'t find end tag corresponding to start tag "i"',
      ],
      ["🏟 🏟&lt;<i    aba  =  ", 'Unclosed start tag "i" at byte offset 13'],
      [
        "🏟 🏟&lt;<i    aba  =  190azAz-.,",
        "Unexpected end of name token at byte offset 27",
      ],
      [
        '🏟 🏟&lt;<i    aba  =  "&lt;&gt;&quot;>',
        "Unclosed start tag at byte offset 13",
      ],
      [
        "🏟 🏟&lt;<i    aba  =  '&lt;&gt;&quot;>",
        "Unclosed start tag at byte offset 13",
      ],
      ["🏟 🏟&lt;</", "Unexpected end tag at byte offset 13"],
      ["🏟 🏟&lt;<b></b></", "Unexpected end tag at byte offset 20"],
      ["🏟 🏟&lt;<i>a</i   ", "Unclosed end tag at byte offset 17"],
      [
        "🏟 🏟&lt;<i>a</em   >",
        'Unmatched end tag at byte offset 17, expected "</i>", found "</em>"',
      ],
      [
        '<span class="x">a</span>',
        'Tag "span" must have class "tg-spoiler" at byte offset 0',
      ],
      [
        '<tg-emoji emoji-id="0">a</tg-emoji>',
        "Invalid custom emoji identifier specified",
      ],
    ];
    for (const [markup, message] of cases) {
      assert.equal(error(parseMarkup(markup, "HTML")), message, markup);
    }
  });

  it("leaves the plain text Telegram shows, entities decoded", () => {
    const cases: [string, string][] = [
      ["", ""],
      [
        "&ge;&lt;&gt;&amp;&quot;&laquo;&raquo;&#12345678;",
        '&ge;<>&"&laquo;&raquo;&#12345678;',
      ],
      ["&Or;", "&Or;"],
      ["➡️ ➡️<i>➡️ ➡️</i>", "➡️ ➡️➡️ ➡️"],
      ["🏟 🏟<i>🏟 &lt🏟</i>", "🏟 🏟🏟 <🏟"],
      ["🏟 🏟<i>🏟 &gt;<b aba   =   caba>&lt🏟</b></i>", "🏟 🏟🏟 ><🏟"],
      ["🏟 🏟&lt;<i    aba  =  190azAz-.   >a</i>", "🏟 🏟<a"],
      ['🏟 🏟&lt;<i    aba  =  "&lt;&gt;&quot;">a</i>', "🏟 🏟<a"],
      ["🏟 🏟&lt;<i    aba  =  '&lt;&gt;&quot;'>a</>", "🏟 🏟<a"],
      ["🏟 🏟&lt;<i>a</    >", "🏟 🏟<a"],
      [
        '➡️ ➡️<span class = "tg-spoiler">➡️ ➡️</span><b>➡️ ➡️</b>',
        "➡️ ➡️➡️ ➡️➡️ ➡️",
      ],
      ["<a href=telegram.org>\t</a>", "\t"],
      ["<a   href=  'telegram.org?&lt;'   > </a>", " "],
      ['🏟 🏟&lt;<pre><code class="language-fift">🏟 🏟&lt;</></>', "🏟 🏟<🏟 🏟<"],
      ['➡️ ➡️<tg-emoji emoji-id = "12345">➡️ ➡️</tg-emoji>', "➡️ ➡️➡️ ➡️"],
      [
        '<blockquote   cite="" askdlbas nasjdbaj nj12b3>a&lt;<pre  >b;</></>',
        "a<b;",
      ],
      ["<blockquote   expandable=false>a&lt;<pre  >b;</></>", "a<b;"],
      ["<B>Bold</B> &#128512; &#x1F600;", "Bold 😀 😀"],
    ];
    for (const [markup, plain] of cases) {
      const parsed = parseMarkup(markup, "HTML");
      assert.equal(text(parsed), plain, markup);
      assert.equal(parsed && "length" in parsed && parsed.length, plain.length);
    }
  });
});

describe("parse modes", () => {
  it("reads the mode's name in any case, takes legacy Markdown as it is, and knows no other mode", () => {
    assert.equal(text(parseMarkup("<b>a</b>", "html")), "a");
    assert.equal(error(parseMarkup("a.b", "markdownv2")), reserved("."));
    assert.equal(text(parseMarkup("*a*.", "Markdown")), "*a*.");
    assert.equal(text(parseMarkup("a.", "")), "a.");
    assert.equal(parseMarkup("a", "Markdown2"), undefined);
  });
});
