"""Turn a stream of LLM text pieces into speakable sentences, as early as possible.

The synthesizer speaks one sentence while the model is still writing the next, so
the splitter hands out each sentence the moment its end is certain: a `.`, `!` or
`?` followed by white space (so "3.14" and "e.g.x" never split), a Chinese/full
width `。！？；` (no space needed), or a line break (list items, headings). Known
abbreviations ("Dr.", "e.g.", "U.S.") and numbered-list markers ("2. ") never end a
sentence. The first clause of a long first sentence may go early, to cut the time to
first audio: at a comma after `early_clause_chars` characters, or, after `early_words`
words, before a word that starts a phrase ("with", "by", "because", ...): "The play
Romeo and Juliet was written | by William Shakespeare." The voice then synthesizes
the first few words alone, and the rest while they play. Fenced code blocks
are not read aloud: they are shown on screen, and sound like noise when spoken.

`normalize_for_speech` removes what a voice reads badly: markdown, emoji, URLs
(read as "a link") and code.

`sounds_complete` is the other direction, for the endpointer: whether a transcript of
what the person said so far reads like a whole question or trails off.
"""

from __future__ import annotations

import re

# Lower-case, without the final period. Never end a sentence after these.
ABBREVIATIONS = frozenset(
    {
        "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "vs", "no", "nos", "fig",
        "figs", "approx", "dept", "est", "inc", "ltd", "co", "corp", "gen", "gov", "sen",
        "rep", "rev", "sgt", "capt", "lt", "col", "jan", "feb", "mar", "apr", "jun", "jul",
        "aug", "sep", "sept", "oct", "nov", "dec", "e.g", "i.e", "u.s", "u.k", "u.s.a", "a.m",
        "p.m", "ph.d", "cf", "al", "ca", "vol", "ed", "eds", "min", "max", "ave", "blvd",
    }
)
# Abbreviations that may also end a sentence: they do when a capital letter follows.
_SENTENCE_FINAL_ABBREVIATIONS = frozenset({"etc", "a.m", "p.m", "inc", "ltd", "co", "corp"})

_TERMINATORS = ".!?…"
_CJK_TERMINATORS = "。！？；"
_CLOSERS = "\"')]}’”»」』）"
_CLAUSE_MARKS = ",;:—–"
_CJK_CLAUSE_MARKS = "，、："
_FENCE = "```"


class SentenceSplitter:
    """Collects streamed text pieces and returns whole sentences ready to speak.

    `feed(piece)` returns the sentences completed by that piece (possibly none);
    `flush()` returns what is left at the end of the reply and resets the splitter.
    Sentences come out normalized for speech (see `normalize_for_speech`) unless
    `normalize` is False; pieces that normalize to nothing are dropped.
    """

    def __init__(
        self,
        *,
        normalize: bool = True,
        early_clause_chars: int = 30,
        early_words: int = 5,
        max_chars: int = 300,
    ) -> None:
        """`early_clause_chars`: a first sentence already this long may be cut at a comma
        (0 disables); `early_words`: one with this many words may be cut before a word
        that starts a phrase (0 disables); `max_chars`: a run without any boundary is cut
        at the last space."""
        self.normalize = normalize
        self.early_clause_chars = early_clause_chars
        self.early_words = early_words
        self.max_chars = max_chars
        self._buffer = ""
        self._in_code = False
        self._emitted = 0

    def feed(self, piece: str) -> list[str]:
        """Add a piece of the reply; the sentences it completed, in order."""
        self._buffer += piece
        return self._drain(final=False)

    def flush(self) -> list[str]:
        """End of the reply: whatever is left, then start afresh."""
        sentences = self._drain(final=True)
        self.reset()
        return sentences

    def reset(self) -> None:
        """Forget everything (e.g. the reply was cancelled)."""
        self._buffer = ""
        self._in_code = False
        self._emitted = 0

    def _drain(self, final: bool) -> list[str]:
        out: list[str] = []
        while self._buffer:
            if self._in_code:
                close = self._buffer.find(_FENCE)
                if close < 0:
                    # keep two characters: the closing fence may be split across pieces
                    self._buffer = "" if final else self._buffer[-2:]
                    break
                self._buffer = self._buffer[close + len(_FENCE):]
                self._in_code = False
                continue
            fence = self._buffer.find(_FENCE)
            region = self._buffer if fence < 0 else self._buffer[:fence]
            end = self._find_end(region, final=final or fence >= 0)
            if end is None:
                break
            self._emit(region[:end], out)
            self._buffer = self._buffer[end:]
            if fence >= 0 and end == len(region):
                self._buffer = self._buffer[len(_FENCE):]
                self._in_code = True
        return out

    def _emit(self, text: str, out: list[str]) -> None:
        spoken = normalize_for_speech(text) if self.normalize else text.strip()
        if spoken:
            out.append(spoken)
            self._emitted += 1

    def _early_cut(self, text: str, line_start: int, i: int) -> bool:
        """Whether the first sentence may end after `text[i]`: a comma far enough in, or a
        space before a phrase."""
        ch = text[i]
        if i >= self.early_clause_chars and (
                ch in _CJK_CLAUSE_MARKS
                or (ch in _CLAUSE_MARKS and i + 1 < len(text) and text[i + 1].isspace())):
            return True
        return ch == " " and self._phrase_starts_after(text, line_start, i)

    def _phrase_starts_after(self, text: str, line_start: int, space: int) -> bool:
        """Whether the first sentence may be cut at the space at `space`: `early_words`
        words before it, and a whole phrase-starting word (followed by a space) after."""
        if self.early_words <= 0:
            return False
        words_before = text[line_start:space].split()
        after = text[space + 1:].split(" ", 1)
        return (len(words_before) >= self.early_words and len(after) == 2
                and after[0].lower() in _PHRASE_STARTS
                and words_before[-1].lower().strip(",;:") not in _CONTINUATIONS)

    def _find_end(self, text: str, final: bool) -> int | None:
        """End (exclusive) of the first sentence in `text`, or None if not yet known."""
        allow_clause = self._emitted == 0 and self.early_clause_chars > 0
        line_start = 0
        i = 0
        n = len(text)
        while i < n:
            ch = text[i]
            if ch == "\n":
                if text[:i].strip():
                    return i + 1
                line_start = i + 1
            elif ch in _CJK_TERMINATORS:
                return _skip_closers(text, i + 1)
            elif ch in _TERMINATORS:
                end = _skip_closers(text, _skip_run(text, i, _TERMINATORS))
                if end == n:
                    return n if final else None
                if not text[end].isspace():
                    i = end
                    continue
                verdict = _period_ends_sentence(text, line_start, i, end) if ch == "." else True
                if verdict is None:
                    return n if final else None
                if verdict:
                    return end
                i = end
                continue
            elif allow_clause and self._early_cut(text, line_start, i):
                return i + 1
            i += 1
        if final:
            return n
        if n > self.max_chars:
            cut = text.rfind(" ", 0, self.max_chars)
            return cut + 1 if cut > 0 else self.max_chars
        return None


_PHRASE_STARTS = frozenset(
    {
        "with", "by", "from", "because", "since", "although", "while", "which", "who",
        "where", "when", "and", "but", "so", "in", "on", "at", "for", "to", "about",
        "after", "before", "until", "during", "like", "than", "through",
    }
)
"""Words a spoken phrase may start with: a first sentence may be cut before one."""


def _skip_run(text: str, i: int, chars: str) -> int:
    while i < len(text) and text[i] in chars:
        i += 1
    return i


def _skip_closers(text: str, i: int) -> int:
    return _skip_run(text, i, _CLOSERS)


def _period_ends_sentence(text: str, line_start: int, dot: int, end: int) -> bool | None:
    """Whether the period at `dot` (followed by white space at `end`) ends a sentence.

    None means it depends on text not seen yet (the word after "etc.").
    """
    word_start = dot
    while word_start > 0 and not text[word_start - 1].isspace():
        word_start -= 1
    word = text[word_start:dot].lstrip("\"'([{“‘*_").lower()
    if word.isdigit() and not text[line_start:word_start].strip():
        return False  # "2. " at the start of a line: a numbered-list marker
    if len(word) == 1 and word.isalpha():
        return False  # an initial, as in "J. R. R. Tolkien"
    if word in _SENTENCE_FINAL_ABBREVIATIONS:
        following = text[end:].lstrip()
        if not following:
            return None
        return following[0].isupper()
    return word not in ABBREVIATIONS


_CODE_BLOCK = re.compile(r"```.*?(```|$)", re.DOTALL)
_INLINE_CODE = re.compile(r"`([^`]*)`")
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>()\"']+", re.IGNORECASE)
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+", re.MULTILINE)
_BULLET = re.compile(r"^\s*[-*+•]\s+", re.MULTILINE)
_QUOTE = re.compile(r"^\s*>\s?", re.MULTILINE)
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}.*$", re.MULTILINE)
_EMPHASIS = re.compile(r"(\*\*|__|~~)(.+?)\1|(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?!\w)"
                       r"|(?<!\w)_(?!\s)(.+?)(?<!\s)_(?!\w)")
_TABLE_ROW = re.compile(r"^\s*\|(.*)\|?\s*$", re.MULTILINE)
_HTML_TAG = re.compile(r"</?[a-zA-Z][^>]*>")
_EMOJI = re.compile(
    "[\U0001f000-\U0001faff\U00002600-\U000027bf\U0001f1e6-\U0001f1ff"
    "\U00002b00-\U00002bff\ufe0f\u200d\u20e3]"
)
_SPACES = re.compile(r"\s+")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.;:!?])")


def _strip_emphasis(match: re.Match[str]) -> str:
    return next(g for g in (match.group(2), match.group(3), match.group(4)) if g is not None)


def normalize_for_speech(text: str) -> str:
    """Text as a voice should read it: no markdown, emoji, code or raw URLs.

    Links keep their label, bare URLs become "a link", fenced code blocks vanish,
    inline code keeps its text, and white space collapses to single spaces. Text with
    nothing to say (only symbols or emoji) becomes "".
    """
    text = _CODE_BLOCK.sub(" ", text)
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = _URL.sub(_url_to_words, text)
    text = _INLINE_CODE.sub(r"\1", text)
    text = _TABLE_RULE.sub(" ", text)
    text = _HEADING.sub("", text)
    text = _QUOTE.sub("", text)
    text = _BULLET.sub("", text)
    text = _TABLE_ROW.sub(_table_row_to_words, text)
    text = _HTML_TAG.sub(" ", text)
    text = _EMPHASIS.sub(_strip_emphasis, text)
    text = _EMOJI.sub(" ", text)
    text = _SPACES.sub(" ", text).strip()
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text).lstrip(" ,;.")
    if not any(ch.isalnum() for ch in text):
        return ""
    return text


def _table_row_to_words(match: re.Match[str]) -> str:
    cells = [cell.strip() for cell in match.group(1).split("|")]
    return ", ".join(cell for cell in cells if cell) + "."


def _url_to_words(match: re.Match[str]) -> str:
    url = match.group(0)
    trailing = ""
    while url and url[-1] in ".,;:!?":
        trailing = url[-1] + trailing
        url = url[:-1]
    return "a link" + trailing


# English words a request does not end on: it trails off ("set a timer for ...").
_CONTINUATIONS = frozenset(
    {
        "a", "an", "the", "and", "or", "but", "so", "then", "if", "than", "as", "because",
        "to", "for", "of", "in", "on", "at", "by", "with", "from", "about", "into", "onto",
        "over", "under", "after", "before", "until", "till", "between", "through", "per",
        "my", "your", "his", "her", "its", "our", "their", "this", "these", "those", "me",
        "us", "is", "are", "was", "were", "be", "am", "do", "does", "did", "can", "could",
        "will", "would", "should", "what", "what's", "whats", "how", "when", "where", "who",
        "which", "why", "um", "uh", "er", "erm", "hmm", "like", "also", "just",
        "set", "turn", "tell", "remind", "play", "put", "give", "show", "let", "let's",
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
        "ten", "eleven", "twelve", "twenty", "thirty", "forty", "fifty", "hundred",
        "thousand", "plus", "minus", "times", "divided", "point",
    }
)
_TRAILING_OFF = (",", ";", ":", "-", "–", "—", "…", "...")
_QUESTION_STARTS = frozenset(
    {
        "what", "what's", "whats", "who", "who's", "whose", "where", "where's", "when", "why",
        "how", "how's", "which", "is", "are", "was", "were", "do", "does", "did", "can",
        "could", "will", "would", "should", "shall", "am", "have", "has", "isn't", "aren't",
        "don't", "doesn't", "can't", "won't",
    }
)


def sounds_complete(text: str) -> bool:
    """Whether `text`, what the person said so far, reads like a whole question: asked
    as one (a "?", or a question word first), at least two words, not ending in a comma
    or an ellipsis, nor on a word that needs more after it (an article, preposition,
    conjunction, auxiliary, a number, "tell me").

    Commands are never complete here: they go on after a pause more often ("Turn on the
    kitchen light, | and then, turn off the radio" was cut live at "light,"). Errs
    towards False (False only makes the endpointer wait its full silence), and is False
    for scripts it has no rules for (no Latin letters)."""
    words = _words(text)
    asked = text.strip().endswith("?") or (bool(words) and words[0] in _QUESTION_STARTS)
    return asked and not trails_off(text)


def sounds_unfinished(text: str) -> bool:
    """Whether `text` clearly stops mid-request: it ends on a comma or an ellipsis, or on
    a word that needs more after it ("Tell me,", "Set a timer for"). Errs towards False
    (False keeps the endpointer's usual silence): False for no words, and for scripts it
    has no rules for (no Latin letters)."""
    words = _words(text)
    if not words or not _latin(words[-1]):
        return False
    return text.strip().endswith(_TRAILING_OFF) or words[-1] in _CONTINUATIONS


def trails_off(text: str) -> bool:
    """Whether `text` sounds unfinished: fewer than two words, or it stops mid-request
    (`sounds_unfinished`: a comma or an ellipsis at the end, or a last word that needs
    more after it). True for scripts without Latin letters (no rules for them)."""
    words = _words(text)
    return len(words) < 2 or not _latin(words[-1]) or sounds_unfinished(text)


def _latin(word: str) -> bool:
    """`word` has Latin letters (the scripts these rules are written for)."""
    return any("a" <= ch <= "z" for ch in word)


def _words(text: str) -> list[str]:
    words = [w.strip(".!?\"'()").lower() for w in text.split()]
    return [w for w in words if w]
