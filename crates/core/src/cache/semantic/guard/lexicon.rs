//! The word lists the correctness guard reads: negation cues, antonym prefixes and their false
//! friends, comparison words, number and date words, opposite pairs, and the words that open a
//! sentence without being a name. Lists only; the logic that uses them is in `extract.rs`.
//!
//! Everything here is lowercase English. A word missing from a list makes the guard more
//! lenient in one place (a trap can slip through); a word wrongly present makes it refuse a
//! paraphrase (a cache miss, which is safe). When in doubt, lists err toward refusing.

/// Whole words that negate. Words ending in `n't` are negations too (see `is_negation`).
const NEGATIONS: &[&str] = &[
    "not", "no", "never", "none", "nothing", "nobody", "neither", "nor", "without", "nowhere",
    "cannot", "dont", "doesnt", "didnt", "isnt", "arent", "wasnt", "werent", "cant", "wont",
    "shouldnt", "wouldnt", "couldnt", "havent", "hasnt", "hadnt", "mustnt", "neednt", "aint",
    // "Which foods should I avoid" asks for the complement of "which should I eat".
    "avoid", "avoids", "avoided", "avoiding",
];

pub(super) fn is_negation(lower: &str) -> bool {
    lower.ends_with("n't") || NEGATIONS.contains(&lower)
}

/// Prefixes that turn a word into its opposite when what follows is itself a word
/// ("unsafe" → "safe"). `non-` is tried before `non`.
pub(super) const ANTONYM_PREFIXES: &[&str] = &["non-", "non", "un", "dis", "in", "im", "il", "ir"];

/// Words that start with an antonym prefix without being the opposite of the rest, and whose
/// rest is a common word ("input" is not the opposite of "put"). Matched as word prefixes, so
/// "inputs" and "imported" are covered.
const PREFIX_FALSE_FRIENDS: &[&str] = &[
    "under",
    "unit",
    "union",
    "unique",
    "univers",
    "unless",
    "until",
    "inside",
    "income",
    "inform",
    "input",
    "invoice",
    "insure",
    "inline",
    "inbox",
    "intake",
    "index",
    "instance",
    "instant",
    "install",
    "instead",
    "insight",
    "invest",
    "interest",
    "into",
    "discount",
    "dispatch",
    "display",
    "discover",
    "discuss",
    "disk",
    "dish",
    "import",
    "impact",
    "improve",
    "impress",
    "implement",
    "imply",
    "important",
    "impose",
    "iron",
    "irony",
];

pub(super) fn is_prefix_false_friend(lower: &str) -> bool {
    PREFIX_FALSE_FRIENDS.iter().any(|f| lower.starts_with(f))
}

/// Words ending in "less" that are not "without X".
pub(super) const LESS_FALSE_FRIENDS: &[&str] = &[
    "unless",
    "regardless",
    "nevertheless",
    "nonetheless",
    "bless",
    "less",
];

/// Comparison words and their canonical form: synonyms share one ("above" = "over" = ">"), so
/// a paraphrase that swaps them still matches, while a change of direction does not.
pub(super) fn comparison_word(lower: &str) -> Option<&'static str> {
    Some(match lower {
        "more" | "greater" | "higher" | "above" | "over" | "exceed" | "exceeds" | "exceeding"
        | "larger" | "bigger" => "gt",
        "less" | "fewer" | "lower" | "below" | "under" | "smaller" => "lt",
        "min" | "minimum" => "ge",
        "max" | "maximum" => "le",
        "equal" | "equals" | "exactly" => "eq",
        "before" | "earlier" | "prior" => "before",
        "after" | "later" => "after",
        "since" => "since",
        "most" | "highest" | "largest" | "biggest" => "most",
        "least" | "lowest" | "smallest" | "fewest" => "least",
        "better" | "worse" | "best" | "worst" | "faster" | "slower" | "cheaper" | "older"
        | "newer" | "younger" | "longer" | "shorter" | "fastest" | "slowest" | "cheapest" => {
            return COMPARATIVES.iter().copied().find(|w| *w == lower);
        }
        _ => return None,
    })
}

const COMPARATIVES: &[&str] = &[
    "better", "worse", "best", "worst", "faster", "slower", "cheaper", "older", "newer", "younger",
    "longer", "shorter", "fastest", "slowest", "cheapest",
];

/// Comparison operators, longest first so "<=" is not read as "<".
pub(super) const COMPARISON_SYMBOLS: &[(&str, &str)] = &[
    ("<=", "le"),
    (">=", "ge"),
    ("==", "eq"),
    ("!=", "ne"),
    ("<>", "ne"),
    ("≠", "ne"),
    ("≤", "le"),
    ("≥", "ge"),
    ("<", "lt"),
    (">", "gt"),
];

/// The value of a number word, and whether it scales what precedes it ("two hundred").
pub(super) fn number_word(lower: &str) -> Option<(u64, bool)> {
    const UNITS: &[&str] = &[
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
    ];
    const TENS: &[&str] = &[
        "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
    ];
    if let Some(n) = UNITS.iter().position(|w| *w == lower) {
        return Some((n as u64, false));
    }
    if let Some(n) = TENS.iter().position(|w| *w == lower) {
        return Some((20 + 10 * n as u64, false));
    }
    match lower {
        "hundred" => Some((100, true)),
        "thousand" => Some((1_000, true)),
        "million" => Some((1_000_000, true)),
        "billion" => Some((1_000_000_000, true)),
        _ => None,
    }
}

/// Words before "one" that make it a pronoun ("which one"), not a count.
pub(super) const ONE_AS_PRONOUN_AFTER: &[&str] = &[
    "which", "the", "this", "that", "each", "any", "every", "no", "some", "another", "other", "a",
    "only", "no",
];

/// Number-like words that are not spelled-out counts, with the token they stand for.
pub(super) fn quantity_word(lower: &str) -> Option<&'static str> {
    Some(match lower {
        "half" => "0.5",
        "twice" => "2x",
        "dozen" => "12",
        "third" => "3rd",
        "fourth" => "4th",
        "fifth" => "5th",
        "sixth" => "6th",
        "seventh" => "7th",
        "eighth" => "8th",
        "ninth" => "9th",
        "tenth" => "10th",
        _ => return None,
    })
}

/// Dates without digits: month and weekday names, relative days. "may" and "march" count only
/// next to a number ("3 May"), being verbs too.
pub(super) fn date_word(lower: &str) -> Option<&'static str> {
    Some(match lower {
        "january" | "jan" => "month:1",
        "february" | "feb" => "month:2",
        "march" | "mar" => "month:3",
        "april" | "apr" => "month:4",
        "may" => "month:5",
        "june" | "jun" => "month:6",
        "july" | "jul" => "month:7",
        "august" | "aug" => "month:8",
        "september" | "sep" | "sept" => "month:9",
        "october" | "oct" => "month:10",
        "november" | "nov" => "month:11",
        "december" | "dec" => "month:12",
        "monday" => "day:mon",
        "tuesday" => "day:tue",
        "wednesday" => "day:wed",
        "thursday" => "day:thu",
        "friday" => "day:fri",
        "saturday" => "day:sat",
        "sunday" => "day:sun",
        "today" => "today",
        "tonight" => "tonight",
        "tomorrow" => "tomorrow",
        "yesterday" => "yesterday",
        "ago" => "ago",
        _ => return None,
    })
}

pub(super) fn is_ambiguous_month(lower: &str) -> bool {
    matches!(lower, "may" | "march" | "mar")
}

/// "next week" ≠ "last week": modifiers that make a relative date when a period follows.
pub(super) fn relative_modifier(lower: &str) -> Option<&'static str> {
    Some(match lower {
        "next" | "coming" | "upcoming" => "next",
        "last" | "previous" | "past" => "last",
        "this" | "current" => "this",
        _ => return None,
    })
}

pub(super) fn is_period(lower: &str) -> bool {
    matches!(
        lower,
        "day" | "week" | "weekend" | "month" | "quarter" | "year" | "night" | "morning" | "evening"
    ) || date_word(lower).is_some_and(|d| d.starts_with("day:"))
}

/// Currency words after a number, written as the symbol ("100 dollars" = "$100").
pub(super) fn currency_word(lower: &str) -> Option<char> {
    match lower {
        "dollar" | "dollars" => Some('$'),
        "euro" | "euros" => Some('€'),
        _ => None,
    }
}

pub(super) fn is_currency_symbol(c: char) -> bool {
    matches!(c, '$' | '€' | '£' | '¥' | '₹')
}

/// Built-in opposite pairs. A strong pair refuses whenever the two prompts use different
/// members, including one side using none ("enable 2FA" vs "turn off 2FA"): kept for switches
/// and permissions, where the opposite is often said with another word. A weak pair refuses
/// only when both prompts use the pair and differ ("import" vs "export"), so a paraphrase with
/// a synonym ("get my contacts out of") still matches.
pub(super) const OPPOSITES: &[(&str, &str, Strength)] = &[
    ("enable", "disable", Strength::Strong),
    ("allow", "deny", Strength::Strong),
    ("allow", "block", Strength::Strong),
    ("add", "remove", Strength::Weak),
    ("increase", "decrease", Strength::Weak),
    ("buy", "sell", Strength::Weak),
    ("accept", "reject", Strength::Strong),
    ("approve", "reject", Strength::Strong),
    ("include", "exclude", Strength::Strong),
    ("start", "stop", Strength::Weak),
    ("true", "false", Strength::Strong),
    ("push", "pull", Strength::Weak),
    ("encrypt", "decrypt", Strength::Strong),
    ("encode", "decode", Strength::Strong),
    ("import", "export", Strength::Weak),
    ("upload", "download", Strength::Weak),
    ("win", "lose", Strength::Weak),
    ("input", "output", Strength::Weak),
    ("credit", "debit", Strength::Weak),
    ("show", "hide", Strength::Weak),
    ("grant", "revoke", Strength::Strong),
    ("maximize", "minimize", Strength::Strong),
    ("maximise", "minimise", Strength::Strong),
    ("ascending", "descending", Strength::Strong),
    ("asc", "desc", Strength::Strong),
    ("inbound", "outbound", Strength::Strong),
    ("internal", "external", Strength::Strong),
    ("public", "private", Strength::Strong),
    ("send", "receive", Strength::Weak),
    ("borrow", "lend", Strength::Weak),
    ("expand", "collapse", Strength::Weak),
    ("upgrade", "downgrade", Strength::Weak),
    ("join", "leave", Strength::Weak),
    ("arrive", "depart", Strength::Weak),
    ("arrival", "departure", Strength::Weak),
    ("positive", "negative", Strength::Weak),
    ("gain", "loss", Strength::Weak),
    ("profit", "loss", Strength::Weak),
    ("rise", "fall", Strength::Weak),
    ("hot", "cold", Strength::Weak),
    ("north", "south", Strength::Weak),
    ("east", "west", Strength::Weak),
    ("male", "female", Strength::Weak),
    ("min", "max", Strength::Strong),
    ("before", "after", Strength::Strong),
    ("open", "close", Strength::Weak),
    ("on", "off", Strength::Weak),
    ("first", "last", Strength::Weak),
    ("left", "right", Strength::Weak),
    ("up", "down", Strength::Weak),
    ("read", "write", Strength::Weak),
    ("long", "short", Strength::Weak),
    ("high", "low", Strength::Weak),
    // Everyday antonyms without a prefix, which embeddings score 0.9 and more when swapped
    // ("Is coffee good for your heart?" / "…bad…": 0.95). Weak: "a good way to" is common.
    ("good", "bad", Strength::Weak),
    ("right", "wrong", Strength::Weak),
    ("men", "women", Strength::Weak),
    ("man", "woman", Strength::Weak),
    ("boy", "girl", Strength::Weak),
    ("husband", "wife", Strength::Weak),
    ("mother", "father", Strength::Weak),
    ("mom", "dad", Strength::Weak),
    ("son", "daughter", Strength::Weak),
    ("brother", "sister", Strength::Weak),
    ("cheap", "expensive", Strength::Weak),
    ("easy", "hard", Strength::Weak),
    ("easy", "difficult", Strength::Weak),
    ("fast", "slow", Strength::Weak),
    ("big", "small", Strength::Weak),
    ("large", "small", Strength::Weak),
    ("new", "old", Strength::Weak),
    ("young", "old", Strength::Weak),
    ("early", "late", Strength::Weak),
    ("light", "heavy", Strength::Weak),
    ("strong", "weak", Strength::Weak),
    ("rich", "poor", Strength::Weak),
    ("happy", "sad", Strength::Weak),
    ("love", "hate", Strength::Weak),
    ("hire", "fire", Strength::Weak),
    ("merge", "split", Strength::Weak),
    ("success", "failure", Strength::Weak),
    ("succeed", "fail", Strength::Weak),
    ("pass", "fail", Strength::Weak),
    ("gain", "lose", Strength::Weak),
    ("safe", "dangerous", Strength::Weak),
    ("benefit", "risk", Strength::Weak),
    ("benefit", "harm", Strength::Weak),
    ("pros", "cons", Strength::Weak),
    ("friend", "enemy", Strength::Weak),
    ("cause", "cure", Strength::Weak),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Strength {
    Strong,
    Weak,
}

/// Irregular forms of the opposite pairs' words.
pub(super) const IRREGULAR_FORMS: &[(&str, &str)] = &[
    ("bought", "buy"),
    ("sold", "sell"),
    ("won", "win"),
    ("lost", "lose"),
    ("losing", "lose"),
    ("sent", "send"),
    ("lent", "lend"),
    ("rose", "rise"),
    ("risen", "rise"),
    ("fell", "fall"),
    ("fallen", "fall"),
    ("wrote", "write"),
    ("written", "write"),
    ("shown", "show"),
    ("hidden", "hide"),
];

/// Capitalised words that open a sentence without being names: question words, auxiliaries,
/// pronouns, determiners, prepositions, greetings and the imperatives prompts start with.
/// Any other capitalised first word counts as a possible name ("Paris hotels near…").
const SENTENCE_OPENERS: &[&str] = &[
    "a",
    "about",
    "actually",
    "add",
    "advantages",
    "after",
    "also",
    "am",
    "an",
    "analyse",
    "analyze",
    "and",
    "answer",
    "any",
    "anyone",
    "are",
    "as",
    "assume",
    "at",
    "based",
    "be",
    "before",
    "benefits",
    "besides",
    "best",
    "book",
    "both",
    "briefly",
    "build",
    "but",
    "by",
    "calculate",
    "can",
    "can't",
    "cancel",
    "causes",
    "change",
    "check",
    "classify",
    "close",
    "common",
    "compare",
    "compose",
    "compute",
    "configure",
    "cons",
    "contrast",
    "convert",
    "correct",
    "could",
    "count",
    "create",
    "debug",
    "define",
    "definition",
    "delete",
    "deploy",
    "describe",
    "design",
    "did",
    "difference",
    "differences",
    "do",
    "does",
    "don't",
    "draft",
    "each",
    "easiest",
    "either",
    "estimate",
    "evaluate",
    "even",
    "every",
    "example",
    "examples",
    "explain",
    "extract",
    "fastest",
    "find",
    "fix",
    "for",
    "format",
    "from",
    "generate",
    "get",
    "give",
    "given",
    "good",
    "great",
    "guide",
    "has",
    "have",
    "hello",
    "help",
    "here",
    "hey",
    "hi",
    "how",
    "how's",
    "however",
    "i",
    "i'd",
    "i'll",
    "i'm",
    "i've",
    "ideas",
    "identify",
    "if",
    "imagine",
    "implement",
    "improve",
    "in",
    "install",
    "instead",
    "is",
    "it",
    "it's",
    "its",
    "just",
    "kindly",
    "let",
    "let's",
    "list",
    "looking",
    "make",
    "many",
    "may",
    "maybe",
    "me",
    "meaning",
    "might",
    "most",
    "much",
    "must",
    "my",
    "name",
    "need",
    "never",
    "no",
    "not",
    "now",
    "of",
    "ok",
    "okay",
    "on",
    "once",
    "one",
    "only",
    "open",
    "optimise",
    "optimize",
    "or",
    "order",
    "other",
    "our",
    "outline",
    "paraphrase",
    "plan",
    "please",
    "pls",
    "predict",
    "prepare",
    "print",
    "proofread",
    "propose",
    "pros",
    "provide",
    "quick",
    "quickly",
    "quite",
    "read",
    "recommend",
    "recommended",
    "refactor",
    "remove",
    "rephrase",
    "reserve",
    "reset",
    "review",
    "rewrite",
    "run",
    "say",
    "schedule",
    "see",
    "send",
    "set",
    "should",
    "show",
    "simple",
    "since",
    "so",
    "solve",
    "some",
    "someone",
    "sorry",
    "sort",
    "start",
    "steps",
    "still",
    "stop",
    "suggest",
    "summarise",
    "summarize",
    "suppose",
    "sure",
    "symptoms",
    "teach",
    "tell",
    "thank",
    "thanks",
    "that",
    "the",
    "then",
    "there",
    "there's",
    "these",
    "they",
    "this",
    "those",
    "tips",
    "to",
    "today",
    "top",
    "translate",
    "trying",
    "typical",
    "under",
    "update",
    "use",
    "using",
    "want",
    "was",
    "ways",
    "we",
    "we're",
    "were",
    "what",
    "what's",
    "whats",
    "when",
    "where",
    "where's",
    "whether",
    "which",
    "while",
    "who",
    "who's",
    "whom",
    "whose",
    "why",
    "will",
    "with",
    "without",
    "would",
    "write",
    "yes",
    "yet",
    "you",
    "your",
];

pub(super) fn is_sentence_opener(lower: &str) -> bool {
    SENTENCE_OPENERS.binary_search(&lower).is_ok()
}

/// Abbreviations with inner dots that are not identifiers.
pub(super) const DOTTED_ABBREVIATIONS: &[&str] = &["e.g", "i.e", "a.m", "p.m", "u.s", "etc"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentence_openers_are_sorted_for_binary_search() {
        assert!(
            SENTENCE_OPENERS.windows(2).all(|w| w[0] < w[1]),
            "keep SENTENCE_OPENERS sorted"
        );
    }
}
