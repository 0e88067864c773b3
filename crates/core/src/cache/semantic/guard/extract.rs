//! Reduces a prompt to its [`Signature`]: splits it into words and operators, then reads
//! numbers and dates, negations, antonym prefixes, comparisons, quoted strings, names and codes,
//! and opposite-pair members from them. One pass over the words; no regular expressions.

use super::lexicon;
use super::{Guard, Signature};

/// One word (letters, digits, and the joiners inside "1,000", "gpt-4o", "don't", "os.path") or
/// one comparison operator.
struct Token {
    lower: String,
    operator: Option<&'static str>,
    capitalised: bool,
    all_caps: bool,
    sentence_start: bool,
    starts_with_digit: bool,
    has_digit: bool,
    /// The character right before and right after the token ("$" in "$5", "%" in "5%").
    before: Option<char>,
    after: Option<char>,
}

pub(super) fn signature(guard: &Guard, text: &str) -> Signature {
    let chars: Vec<char> = text
        .chars()
        .map(|c| if c == '’' { '\'' } else { c })
        .collect();
    let tokens = tokenize(&chars);
    let mut builder = Builder {
        guard,
        signature: Signature::default(),
        pending: None,
    };
    builder.signature.quoted = quoted(&chars);
    let mut i = 0;
    while i < tokens.len() {
        i += builder.token(&tokens, i);
    }
    builder.flush_number_words();
    let sig = &mut builder.signature;
    sig.vocabulary = sig.words.clone();
    sig.vocabulary.sort_unstable();
    sig.vocabulary.dedup();
    sig.names.sort_unstable();
    sig.names.dedup();
    sig.opposites.sort_unstable();
    sig.opposites.dedup_by(|next, kept| {
        let same_pair = next.0 == kept.0;
        if same_pair {
            kept.1 |= next.1;
        }
        same_pair
    });
    builder.signature
}

fn tokenize(chars: &[char]) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut sentence_start = true;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if is_word_char(c) {
            let start = i;
            i += 1;
            while i < chars.len() {
                if is_word_char(chars[i]) {
                    i += 1;
                } else if i + 1 < chars.len() && joins(chars[i - 1], chars[i], chars[i + 1]) {
                    i += 2;
                } else {
                    break;
                }
            }
            tokens.push(word_token(chars, start, i, sentence_start));
            sentence_start = false;
            continue;
        }
        if let Some((symbol, canonical)) = operator_at(chars, i) {
            tokens.push(operator_token(canonical));
            i += symbol.chars().count();
            continue;
        }
        if matches!(c, '.' | '!' | '?' | '\n' | ':' | ';') {
            sentence_start = true;
        }
        i += 1;
    }
    tokens
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Whether `joiner` between `before` and `after` keeps them in one token.
fn joins(before: char, joiner: char, after: char) -> bool {
    match joiner {
        '.' | '-' => before.is_alphanumeric() && after.is_alphanumeric(),
        ',' | ':' | '/' => before.is_ascii_digit() && after.is_ascii_digit(),
        '\'' => before.is_alphabetic() && after.is_alphabetic(),
        _ => false,
    }
}

fn operator_at(chars: &[char], i: usize) -> Option<(&'static str, &'static str)> {
    lexicon::COMPARISON_SYMBOLS
        .iter()
        .copied()
        .find(|(symbol, _)| {
            let mut at = chars[i..].iter();
            symbol.chars().all(|s| at.next() == Some(&s))
            // "->" and "=>" are arrows, not comparisons.
            && !(symbol.starts_with('>') && i > 0 && matches!(chars[i - 1], '-' | '='))
        })
}

fn word_token(chars: &[char], start: usize, end: usize, sentence_start: bool) -> Token {
    let word = &chars[start..end];
    let letters = || word.iter().filter(|c| c.is_alphabetic());
    Token {
        lower: word.iter().flat_map(|c| c.to_lowercase()).collect(),
        operator: None,
        capitalised: word[0].is_uppercase(),
        all_caps: letters().count() >= 2 && letters().all(|c| c.is_uppercase()),
        sentence_start,
        starts_with_digit: word[0].is_ascii_digit(),
        has_digit: word.iter().any(char::is_ascii_digit),
        before: start.checked_sub(1).map(|b| chars[b]),
        after: chars.get(end).copied(),
    }
}

fn operator_token(canonical: &'static str) -> Token {
    Token {
        lower: String::new(),
        operator: Some(canonical),
        capitalised: false,
        all_caps: false,
        sentence_start: false,
        starts_with_digit: false,
        has_digit: false,
        before: None,
        after: None,
    }
}

struct Builder<'g> {
    guard: &'g Guard,
    signature: Signature,
    /// Spelled-out number being read ("two hundred and five"): (total, current group).
    pending: Option<(u64, u64)>,
}

impl Builder<'_> {
    /// Reads `tokens[i]` (and any it owns, like "percent" after a number); returns how many
    /// tokens were consumed.
    fn token(&mut self, tokens: &[Token], i: usize) -> usize {
        let token = &tokens[i];
        let next = tokens.get(i + 1).map_or("", |t| t.lower.as_str());
        if let Some(canonical) = token.operator {
            self.flush_number_words();
            self.signature.comparisons.push(canonical);
            return 1;
        }
        let lower = token.lower.as_str();
        self.signature.words.push(hash(lower));
        if self.number_word(tokens, i) {
            return 1;
        }
        if self.pending.is_some() && lower == "and" && lexicon::number_word(next).is_some() {
            return 1;
        }
        if lower == "times" && self.pending.is_some() {
            self.flush_number_words();
            if let Some(count) = self.signature.numbers.last_mut() {
                *count = format!("{count}x").into_boxed_str();
            }
            return 1;
        }
        self.flush_number_words();
        if is_number(token) {
            return self.number(tokens, i);
        }
        if lexicon::is_negation(lower) {
            self.signature.negations = self.signature.negations.saturating_add(1);
        }
        self.dates(tokens, i);
        let consumed = self.comparison(lower, next);
        self.opposites(lower, next);
        self.name_or_code(token);
        self.antonym(lower);
        consumed
    }

    /// Spelled-out numbers, composed: "twenty-five" → 25, "two hundred" → 200, and a scale
    /// after digits: "5 million" → 5000000.
    fn number_word(&mut self, tokens: &[Token], i: usize) -> bool {
        let lower = tokens[i].lower.as_str();
        let parts: Vec<(u64, bool)> = lower.split('-').map_while(lexicon::number_word).collect();
        if parts.is_empty() || parts.len() != lower.split('-').count() {
            return false;
        }
        let previous = i.checked_sub(1).map(|p| tokens[p].lower.as_str());
        if lower == "one" && previous.is_some_and(|p| lexicon::ONE_AS_PRONOUN_AFTER.contains(&p)) {
            return false;
        }
        for (value, scales) in parts {
            let (total, current) = self.pending.unwrap_or((0, 0));
            self.pending = Some(match (scales, value) {
                (true, 100) => (total, current.max(1) * 100),
                (true, scale) => (total + current.max(1) * scale, 0),
                (false, value) => (total, current + value),
            });
        }
        true
    }

    fn flush_number_words(&mut self) {
        if let Some((total, current)) = self.pending.take() {
            self.signature
                .numbers
                .push((total + current).to_string().into_boxed_str());
        }
    }

    /// A token written with digits, with what belongs to it: a currency symbol before, a
    /// percent sign, "percent", "am"/"pm", "million" or a currency word after.
    fn number(&mut self, tokens: &[Token], i: usize) -> usize {
        let token = &tokens[i];
        let next = tokens.get(i + 1).map_or("", |t| t.lower.as_str());
        let after_next = tokens.get(i + 2).map_or("", |t| t.lower.as_str());
        let mut consumed = 1;
        let mut values = normalize_number(&token.lower);
        let mut prefix = token.before.filter(|c| lexicon::is_currency_symbol(*c));
        let mut suffix = "";
        if let (Some((scale, _)), [only]) =
            (lexicon::number_word(next).filter(|w| w.1), &mut values[..])
            && let Some(scaled) = scale_number(only, scale)
        {
            *only = scaled;
            consumed += 1;
        }
        let unit = tokens.get(i + consumed - 1).and_then(|t| t.after);
        let next = tokens.get(i + consumed).map_or("", |t| t.lower.as_str());
        if unit == Some('%') {
            suffix = "%";
        } else if next == "percent" || next == "pct" {
            (suffix, consumed) = ("%", consumed + 1);
        } else if next == "per" && after_next == "cent" {
            (suffix, consumed) = ("%", consumed + 2);
        } else if matches!(next, "am" | "pm" | "a.m" | "p.m") && values.len() == 1 {
            (suffix, consumed) = (
                if next.starts_with('a') { "am" } else { "pm" },
                consumed + 1,
            );
        } else if next == "times" && values.len() == 1 {
            // "2 times" = "twice" = "2x".
            (suffix, consumed) = ("x", consumed + 1);
        } else if let Some(symbol) = lexicon::currency_word(next) {
            (prefix, consumed) = (Some(symbol), consumed + 1);
        }
        for value in values {
            let mut written = String::with_capacity(value.len() + 4);
            written.extend(prefix);
            written.push_str(&value);
            written.push_str(suffix);
            self.signature.numbers.push(written.into_boxed_str());
        }
        consumed
    }

    fn dates(&mut self, tokens: &[Token], i: usize) {
        let lower = tokens[i].lower.as_str();
        let beside_digit = |at: Option<usize>| {
            at.and_then(|a| tokens.get(a))
                .is_some_and(|t| t.starts_with_digit)
        };
        if let Some(quantity) = lexicon::quantity_word(lower) {
            self.signature.numbers.push(quantity.into());
        } else if let Some(date) = lexicon::date_word(lower).or_else(|| weekday_plural(lower)) {
            if !lexicon::is_ambiguous_month(lower)
                || beside_digit(i.checked_sub(1))
                || beside_digit(Some(i + 1))
            {
                self.signature.numbers.push(date.into());
            }
        } else if let Some(modifier) = lexicon::relative_modifier(lower)
            && let Some(period) = tokens
                .get(i + 1)
                .map(|t| t.lower.as_str())
                .filter(|p| lexicon::is_period(p))
        {
            self.signature
                .numbers
                .push(format!("{modifier}:{period}").into_boxed_str());
        }
    }

    /// Returns how many tokens the comparison used ("at least" is one comparison).
    fn comparison(&mut self, lower: &str, next: &str) -> usize {
        match (lower, next) {
            ("at", "least") => self.signature.comparisons.push("ge"),
            ("at", "most") => self.signature.comparisons.push("le"),
            // "the best way to" asks how, not for a ranking.
            ("best", "way" | "ways" | "practice" | "practices" | "approach") => return 1,
            _ => {
                if let Some(canonical) = lexicon::comparison_word(lower) {
                    self.signature.comparisons.push(canonical);
                }
                return 1;
            }
        }
        self.signature.words.push(hash(next));
        2
    }

    fn opposites(&mut self, lower: &str, next: &str) {
        let guard = self.guard;
        let mut record =
            |members: &[(u16, u8)]| self.signature.opposites.extend_from_slice(members);
        record(guard.opposite_members(lower));
        if guard.has_phrases && !next.is_empty() {
            record(guard.opposite_members(&format!("{lower} {next}")));
        }
    }

    fn name_or_code(&mut self, token: &Token) {
        let lower = token.lower.as_str();
        if lexicon::DOTTED_ABBREVIATIONS.contains(&lower) {
            return;
        }
        let code = token.has_digit || lower.contains(['_', '.']);
        let pronoun_i = matches!(lower, "i" | "i'm" | "i'd" | "i've" | "i'll");
        // A sentence's first word is a name unless it is a usual opener; a gerund ("Packing
        // list for…") is an opener too.
        let opener =
            token.sentence_start && (lexicon::is_sentence_opener(lower) || lower.ends_with("ing"));
        let name = token.capitalised && !pronoun_i && !opener;
        if code || token.all_caps || name {
            self.signature.names.push(hash(lower));
        }
    }

    /// "unsafe" negates "safe", "useless" negates "use" and "useful": recorded here, checked
    /// against the other prompt's words at comparison time.
    fn antonym(&mut self, lower: &str) {
        if !lower.chars().all(|c| c.is_alphabetic() || c == '-') {
            return;
        }
        let long_enough = |stem: &str| stem.chars().filter(|c| c.is_alphabetic()).count() >= 3;
        if !lexicon::is_prefix_false_friend(lower) {
            let stem = lexicon::ANTONYM_PREFIXES
                .iter()
                .find_map(|p| lower.strip_prefix(p));
            if let Some(stem) = stem.filter(|s| long_enough(s)) {
                self.signature.antonyms.push((hash(lower), hash(stem)));
            }
        }
        if let Some(stem) = lower.strip_suffix("less").filter(|s| long_enough(s))
            && !lexicon::LESS_FALSE_FRIENDS.contains(&lower)
        {
            self.signature.antonyms.push((hash(lower), hash(stem)));
            self.signature
                .antonyms
                .push((hash(lower), hash(&format!("{stem}ful"))));
        }
    }
}

/// "Sundays" is "Sunday" (what is open on Sundays is what is open on Sunday).
fn weekday_plural(lower: &str) -> Option<&'static str> {
    let day = lexicon::date_word(lower.strip_suffix('s')?)?;
    day.starts_with("day:").then_some(day)
}

/// Digits first ("42", "3.5", "2024-03-05", "5pm"), or a version ("v2", "v1.2").
fn is_number(token: &Token) -> bool {
    token.starts_with_digit
        || (token.lower.starts_with('v')
            && token.lower[1..].starts_with(|c: char| c.is_ascii_digit())
            && token.lower[1..]
                .chars()
                .all(|c| c.is_ascii_digit() || c == '.'))
}

/// "1,000" → ["1000"]; "1,2,3" → ["1", "2", "3"]; "10k" → ["10000"]; "9am-5pm" → ["9am",
/// "5pm"]; dates, times and versions stay as written.
fn normalize_number(lower: &str) -> Vec<String> {
    let core_len = lower
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | ',' | ':' | '/' | '-')))
        .unwrap_or(lower.len());
    let (core, unit) = lower.split_at(core_len);
    if let Some(count) = core.strip_suffix('-').filter(|_| !unit.contains('-')) {
        // "3-day", "10-minute": the count is what matters, as in "3 days".
        return normalize_number(count);
    }
    if !unit.is_empty() && unit.contains('-') {
        return lower
            .split('-')
            .filter(|part| part.starts_with(|c: char| c.is_ascii_digit()))
            .flat_map(normalize_number)
            .collect();
    }
    if !core.contains(',') {
        return match (unit, scale_number(core, 1000)) {
            ("k", Some(thousands)) => vec![thousands],
            _ => vec![lower.to_owned()],
        };
    }
    if is_thousands_grouped(core) {
        return vec![format!("{}{unit}", core.replace(',', ""))];
    }
    let mut parts: Vec<String> = core.split(',').map(str::to_owned).collect();
    if let Some(last) = parts.last_mut() {
        last.push_str(unit);
    }
    parts
}

/// "1,000", "12,345,678.9": groups of three digits after the first comma.
fn is_thousands_grouped(core: &str) -> bool {
    let integer = core.split('.').next().unwrap_or(core);
    let mut groups = integer.split(',');
    let first_ok = groups.next().is_some_and(|g| (1..=3).contains(&g.len()));
    first_ok
        && groups.all(|g| g.len() == 3 && g.chars().all(|c| c.is_ascii_digit()))
        && core.matches('.').count() <= 1
}

/// `value` × `scale` written without a fraction when whole ("1.5" × 1000000 → "1500000").
fn scale_number(value: &str, scale: u64) -> Option<String> {
    let plain = value.replace(',', "");
    let number: f64 = plain.parse().ok()?;
    let scaled = number * scale as f64;
    if scaled.fract() == 0.0 && scaled.abs() < 1e15 {
        Some(format!("{}", scaled as i64))
    } else {
        Some(format!("{scaled}"))
    }
}

/// Quoted strings in order: "…", “…”, `…`, ```…```, and '…' where the quote is not an
/// apostrophe ("don't", "users' data").
fn quoted(chars: &[char]) -> Vec<Box<str>> {
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let span = match chars[i] {
            '"' | '“' => close_at(chars, i + 1, |c, _| matches!(c, '"' | '”'))
                .map(|end| (i + 1, end, end + 1)),
            '`' if chars[i..].starts_with(&['`', '`', '`']) => {
                find_fence(chars, i + 3).map(|end| (i + 3, end, end + 3))
            }
            '`' => close_at(chars, i + 1, |c, _| c == '`').map(|end| (i + 1, end, end + 1)),
            '\'' | '‘' if opens_single(chars, i) => close_at(chars, i + 1, |c, at| {
                matches!(c, '\'' | '’')
                    && !chars.get(at + 1).is_some_and(|n| n.is_alphanumeric())
                    && !chars[at - 1].is_whitespace()
            })
            .map(|end| (i + 1, end, end + 1)),
            _ => None,
        };
        match span {
            Some((start, end, resume)) => {
                found.push(chars[start..end].iter().collect::<String>().trim().into());
                i = resume;
            }
            None => i += 1,
        }
    }
    found
}

fn close_at(chars: &[char], from: usize, closes: impl Fn(char, usize) -> bool) -> Option<usize> {
    (from..chars.len()).find(|&at| closes(chars[at], at))
}

fn find_fence(chars: &[char], from: usize) -> Option<usize> {
    (from..chars.len().saturating_sub(2)).find(|&at| chars[at..].starts_with(&['`', '`', '`']))
}

fn opens_single(chars: &[char], at: usize) -> bool {
    let after_word = at > 0 && chars[at - 1].is_alphanumeric();
    let before_space = chars.get(at + 1).is_none_or(|c| c.is_whitespace());
    !after_word && !before_space
}

/// FNV-1a: stable, fast on short words, and good enough to tell words apart.
pub(super) fn hash(word: &str) -> u64 {
    word.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
