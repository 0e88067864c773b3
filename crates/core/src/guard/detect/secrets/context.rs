//! Credentials recognised by their surroundings rather than their own shape: a value assigned
//! to a key-like name (`api_key = …`, `"client_secret": "…"`, `password: …`, "my password is
//! …"), the password inside a URL's user-info or an ADO.NET connection string, `mysql -p…`,
//! and the AWS secret access key next to its access key id.
//!
//! A name counts when its last word (split at `_ - .` and camelCase) is a credential word —
//! `OPENAI_API_KEY`, `clientSecret`, `secret_key_base`, `x-api-key` — and none of its words
//! marks a non-secret (`public_key`, `primary_key`, `cache_key`, `nextPageToken`,
//! `max_tokens`…). The value must then look like a credential: a password has mixed character
//! classes, anything else must be long and high in entropy. Values that are code or
//! placeholders are skipped: `os.environ["KEY"]`, `settings.SECRET_KEY`, `${DB_PASSWORD}`,
//! `<token>`, `your-api-key-here`, `********`.

use memchr::{memchr, memrchr};

use super::super::text::{contains_ignore_ascii_case, is_word_byte, shannon_entropy};
use super::super::{Finding, Kind, SecretKind};
use super::SecretsConfig;

/// Words that make a name a password's.
const PASSWORD_WORDS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "pass",
    "passphrase",
    "passcode",
    "contraseña",
    "passwort",
    "senha",
    "пароль",
    "Пароль",
    "mot de passe",
];
/// Words that make a name any other credential's.
const KEY_WORDS: &[&str] = &[
    "key",
    "token",
    "secret",
    "auth",
    "authorization",
    "credential",
    "credentials",
    "apikey",
    "secretkey",
    "accesskey",
    "secretaccesskey",
    "authtoken",
    "accesstoken",
];
/// Words that make a key-like name something public or not a credential at all.
const NOT_SECRET_WORDS: &[&str] = &[
    "public",
    "publishable",
    "primary",
    "foreign",
    "sort",
    "partition",
    "cache",
    "idempotency",
    "next",
    "page",
    "continuation",
    "cursor",
    "sync",
    "max",
    "min",
    "num",
    "total",
    "prompt",
    "completion",
    "input",
    "output",
    "reasoning",
    "site",
    "ssh",
    "gpg",
    "pgp",
    "id",
];
/// Values that are words, types or empties, not credentials.
const NOT_VALUES: &[&str] = &[
    "true",
    "false",
    "null",
    "none",
    "nil",
    "undefined",
    "required",
    "optional",
    "string",
    "str",
    "bool",
    "boolean",
    "int",
    "integer",
    "bytes",
    "secret",
    "password",
    "token",
    "hidden",
    "env",
    "default",
    "empty",
    "pass",
    "passwd",
    "pwd",
    "changeme",
    "xxx",
    "user",
    "username",
];
/// Fragments that mark a placeholder.
const PLACEHOLDER_MARKS: &[&str] = &[
    "your",
    "placeholder",
    "redacted",
    "dummy",
    "replace",
    "xxxx",
    "****",
    "...",
    "${",
    "{{",
    "<",
    ">",
];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Class {
    Password,
    AwsSecret,
    Other,
}

/// How the value was introduced: by `=`/`:`, by a verb ("is"), or by a bare space.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Intro {
    Assign,
    Verb,
    Bare,
}

/// The context rule's state over one text: names already judged are not judged again when a
/// second keyword falls inside them (`aws_secret_access_key` holds `secret` and `key`).
pub(super) struct Scan<'c> {
    config: &'c SecretsConfig,
    judged_until: usize,
}

impl<'c> Scan<'c> {
    pub(super) fn new(config: &'c SecretsConfig) -> Self {
        Scan {
            config,
            judged_until: 0,
        }
    }

    /// Judges the name around the keyword at `ks..ke` and the value assigned to it.
    pub(super) fn assignment(&mut self, text: &str, ks: usize, ke: usize, out: &mut Vec<Finding>) {
        let b = text.as_bytes();
        if ks < self.judged_until {
            return;
        }
        // Names are short; a keyword inside a long token (a base64 blob) names nothing, and
        // the bound keeps such blobs linear to scan.
        const MAX_NAME: usize = 64;
        let ident_byte = |c: u8| is_word_byte(c) || c == b'-' || c == b'.';
        let mut il = ks;
        while il > 0 && ident_byte(b[il - 1]) && ks - il <= MAX_NAME {
            il -= 1;
        }
        let mut ir = ke;
        while ir < b.len() && ident_byte(b[ir]) && ir - ke <= MAX_NAME {
            ir += 1;
        }
        self.judged_until = ir;
        if ks - il > MAX_NAME || ir - ke > MAX_NAME {
            return;
        }
        let Some(class) = classify(&b[il..ir]) else {
            return;
        };
        // In a URL query (`?key=…&page=2`) `&` ends the value; elsewhere (`.env`, YAML) it
        // may be part of it.
        let in_query = il > 0 && matches!(b[il - 1], b'?' | b'&');
        let Some((vs, ve, intro)) = value_after(b, ir, in_query) else {
            return;
        };
        let value = &b[vs..ve];
        if !plausible(value) {
            return;
        }
        let ok = match (class, intro) {
            (Class::Password, Intro::Assign) => password_like(value),
            (Class::Password, Intro::Verb) => {
                password_like(value) && value.iter().any(u8::is_ascii_digit)
            }
            _ => random_like(value, self.config),
        };
        if !ok {
            return;
        }
        let kind = if class == Class::AwsSecret && looks_like_aws_secret(value) {
            SecretKind::AwsSecretKey
        } else if in_ado_string(b, il) {
            SecretKind::ConnectionString
        } else {
            SecretKind::Generic
        };
        out.push(Finding::new(Kind::Secret(kind), vs, ve));
    }
}

/// The words of an identifier, split at `_ - .` and at lower→upper case changes.
fn words<'a>(ident: &'a [u8], mut f: impl FnMut(&'a [u8])) {
    if ident.contains(&b' ') {
        f(ident); // "mot de passe"
        return;
    }
    let mut start = 0;
    for i in 0..ident.len() {
        let c = ident[i];
        if matches!(c, b'_' | b'-' | b'.') {
            if i > start {
                f(&ident[start..i]);
            }
            start = i + 1;
        } else if i > start && c.is_ascii_uppercase() && ident[i - 1].is_ascii_lowercase() {
            f(&ident[start..i]);
            start = i;
        }
    }
    if start < ident.len() {
        f(&ident[start..]);
    }
}

fn is_one_of(word: &[u8], list: &[&str]) -> bool {
    list.iter().any(|w| w.as_bytes().eq_ignore_ascii_case(word))
}

fn classify(ident: &[u8]) -> Option<Class> {
    let (mut last, mut before_last): (&[u8], &[u8]) = (&[], &[]);
    let (mut excluded, mut secret, mut access) = (false, false, false);
    words(ident, |w| {
        excluded |= is_one_of(w, NOT_SECRET_WORDS);
        secret |= w.eq_ignore_ascii_case(b"secret");
        access |= w.eq_ignore_ascii_case(b"access") || w.eq_ignore_ascii_case(b"aws");
        before_last = last;
        last = w;
    });
    if excluded || last.is_empty() {
        return None;
    }
    // `secret_key_base`, `api_key_value`: the credential word is the one before.
    let word = if is_one_of(last, &["base", "value"]) {
        before_last
    } else {
        last
    };
    if is_one_of(word, PASSWORD_WORDS) {
        Some(Class::Password)
    } else if word.eq_ignore_ascii_case(b"secretaccesskey") || (secret && access) {
        Some(Class::AwsSecret)
    } else if is_one_of(word, KEY_WORDS) {
        Some(Class::Other)
    } else {
        None
    }
}

/// The value after the name ending at `ir`: its span and how it was introduced.
fn value_after(b: &[u8], ir: usize, in_query: bool) -> Option<(usize, usize, Intro)> {
    let mut k = ir;
    if matches!(b.get(k), Some(b'"' | b'\'')) {
        k += 1; // the closing quote of a JSON or YAML key
    }
    let spaces = |mut k: usize| {
        while matches!(b.get(k), Some(b' ' | b'\t')) {
            k += 1;
        }
        k
    };
    let after_name = k;
    k = spaces(k);
    let rest = &b[k..];
    let intro = if rest.starts_with(b":=") || rest.starts_with(b"=>") {
        k += 2;
        Intro::Assign
    } else if rest.starts_with(b"==") || rest.starts_with(b"://") {
        return None; // a comparison, or a URL (judged by the URL rule)
    } else if matches!(rest.first(), Some(b'=' | b':')) {
        k += 1;
        Intro::Assign
    } else if let Some(n) = verb_len(rest) {
        k += n;
        Intro::Verb
    } else if k > after_name && k - after_name <= 2 {
        Intro::Bare
    } else {
        return None;
    };
    k = spaces(k);
    for scheme in [&b"Bearer "[..], b"Basic ", b"token "] {
        if b.len() >= k + scheme.len() && b[k..k + scheme.len()].eq_ignore_ascii_case(scheme) {
            k += scheme.len();
        }
    }
    let (vs, ve) = match b.get(k) {
        Some(&q @ (b'"' | b'\'' | b'`')) => {
            let line_end = b[k + 1..].iter().position(|&c| c == q || c == b'\n')?;
            if b[k + 1 + line_end] != q {
                return None;
            }
            (k + 1, k + 1 + line_end)
        }
        _ => {
            // Non-ASCII ends a bare value too: «…», “…” and CJK punctuation are prose.
            let stop = |c: u8| {
                !c.is_ascii()
                    || c.is_ascii_whitespace()
                    || b",;\"'`<>(){}[]".contains(&c)
                    || (in_query && c == b'&')
            };
            let mut e = k;
            while e < b.len() && !stop(b[e]) {
                e += 1;
            }
            while e > k && b[e - 1] == b'.' {
                e -= 1; // the end of a sentence
            }
            (k, e)
        }
    };
    (ve > vs).then_some((vs, ve, intro))
}

/// "password is …", "the API key is …" in a few languages.
fn verb_len(rest: &[u8]) -> Option<usize> {
    ["is ", "was ", "es ", "ist ", "est ", "é ", "era "]
        .iter()
        .find(|v| rest.len() >= v.len() && rest[..v.len()].eq_ignore_ascii_case(v.as_bytes()))
        .map(|v| v.len())
}

/// Not code, not a placeholder, not a word.
fn plausible(v: &[u8]) -> bool {
    if v.len() > 512 || v.is_empty() || b"$%{<([*#&".contains(&v[0]) {
        return false;
    }
    if is_one_of(v, NOT_VALUES)
        || PLACEHOLDER_MARKS
            .iter()
            .any(|m| contains_ignore_ascii_case(v, m.as_bytes()))
    {
        return false;
    }
    if v.starts_with(b"pk_live_") || v.starts_with(b"pk_test_") {
        return false; // Stripe publishable keys are meant to be public
    }
    // A call (`get_password()`), an environment variable's name, or a dotted path to a
    // setting (`settings.SECRET_KEY`, `process.env.TOKEN`).
    let call = v.windows(2).any(|w| w[1] == b'(' && is_word_byte(w[0]));
    let env_name = v.contains(&b'_')
        && v.iter()
            .all(|&c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_');
    let dotted_path = v.contains(&b'.')
        && !v.iter().any(u8::is_ascii_digit)
        && v.iter().all(|&c| is_word_byte(c) || c == b'.');
    let snake_name = v.contains(&b'_')
        && v.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_');
    // A file path (`uploads/2024/06/x.png`): slashes and an extension. Base64 keys hold
    // slashes too, but do not end in `.png`.
    let path = v.contains(&b'/')
        && v.iter().rposition(|&c| c == b'.').is_some_and(|dot| {
            let ext = &v[dot + 1..];
            (2..=4).contains(&ext.len()) && ext.iter().all(u8::is_ascii_lowercase)
        });
    !(call || env_name || dotted_path || snake_name || path)
}

/// A password: 6 to 128 characters mixing at least two classes, one a digit or a symbol.
fn password_like(v: &[u8]) -> bool {
    let lower = v.iter().any(u8::is_ascii_lowercase);
    let upper = v.iter().any(u8::is_ascii_uppercase);
    let digit = v.iter().any(u8::is_ascii_digit);
    let symbol = v.iter().any(|c| !c.is_ascii_alphanumeric());
    let classes = [lower, upper, digit, symbol].iter().filter(|&&x| x).count();
    (6..=128).contains(&v.len()) && classes >= 2 && (digit || symbol) && (lower || upper)
}

/// A generated key or token: long, high in entropy, and mixing letters with digits.
fn random_like(v: &[u8], config: &SecretsConfig) -> bool {
    let letter = v.iter().any(u8::is_ascii_alphabetic);
    let digit = v.iter().any(u8::is_ascii_digit);
    let cases = v.iter().any(u8::is_ascii_lowercase) && v.iter().any(u8::is_ascii_uppercase);
    v.len() >= config.min_value_len
        && shannon_entropy(v) >= config.entropy_threshold
        && ((letter && digit) || (cases && v.len() >= 24))
}

fn is_b64_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'/' || c == b'+'
}

/// AWS secret access keys: 40 characters of base64, all three character classes, and not a
/// hex digest (a git SHA-1 is 40 characters too).
fn looks_like_aws_secret(v: &[u8]) -> bool {
    v.len() == 40
        && v.iter().all(|&c| is_b64_byte(c))
        && v.iter().any(u8::is_ascii_uppercase)
        && v.iter().any(u8::is_ascii_lowercase)
        && v.iter().any(u8::is_ascii_digit)
        && !v.iter().all(u8::is_ascii_hexdigit)
        && shannon_entropy(v) >= 3.5
}

/// The secret access key written right after its access key id ("AKIA… / wJalr…", or the next
/// line of a credentials file), within 120 bytes of the id's end.
pub(super) fn aws_secret_near(b: &[u8], from: usize, out: &mut Vec<Finding>) {
    let limit = b.len().min(from + 120);
    let mut k = from;
    while k < limit {
        if !is_b64_byte(b[k]) {
            k += 1;
            continue;
        }
        let mut e = k;
        while e < b.len() && is_b64_byte(b[e]) {
            e += 1;
        }
        let bounded = k == 0 || !is_b64_byte(b[k - 1]);
        if bounded && b.get(e) != Some(&b'=') && looks_like_aws_secret(&b[k..e]) {
            out.push(Finding::new(Kind::Secret(SecretKind::AwsSecretKey), k, e));
            return;
        }
        k = e;
    }
}

/// `Server=…;User ID=…;Password=…;`: the name follows a `;` or the line names a server.
fn in_ado_string(b: &[u8], il: usize) -> bool {
    // A connection string's keys sit within a few hundred bytes before the password.
    let from = il.saturating_sub(256);
    let line = memrchr(b'\n', &b[from..il]).map_or(from, |i| from + i + 1);
    let head = &b[line..il];
    head.last() == Some(&b';')
        || ["server=", "data source=", "host="]
            .iter()
            .any(|w| contains_ignore_ascii_case(head, w.as_bytes()))
}

/// The password in `scheme://user:password@host`, anchored on the `://` at `p`.
pub(super) fn url_password(b: &[u8], p: usize) -> Option<(usize, usize)> {
    let mut s = p;
    while s > 0
        && p - s < 32
        && (b[s - 1].is_ascii_alphanumeric() || matches!(b[s - 1], b'+' | b'.' | b'-'))
    {
        s -= 1;
    }
    if s == p || !b[s].is_ascii_alphabetic() {
        return None;
    }
    let a0 = p + 3;
    let mut ae = a0;
    while ae < b.len() && ae - a0 < 512 && !b" \t\r\n/?#\"'`<>".contains(&b[ae]) {
        ae += 1;
    }
    let at = a0 + memrchr(b'@', &b[a0..ae])?;
    let colon = a0 + memchr(b':', &b[a0..at])?;
    let pw = &b[colon + 1..at];
    let placeholder = pw.is_empty()
        || pw.starts_with(b"$")
        || pw.starts_with(b"{")
        || pw.iter().all(|&c| c == b'*' || c == b'x' || c == b'X')
        || is_one_of(pw, NOT_VALUES)
        || PLACEHOLDER_MARKS
            .iter()
            .any(|m| contains_ignore_ascii_case(pw, m.as_bytes()));
    (!placeholder).then_some((colon + 1, at))
}

/// `mysql -u root -pS3cret`: the password glued to `-p`, on a line that runs a MySQL client.
pub(super) fn mysql_password(b: &[u8], p: usize) -> Option<(usize, usize)> {
    let vs = p + 3;
    let line = memrchr(b'\n', &b[..p]).map_or(0, |i| i + 1);
    if !contains_ignore_ascii_case(&b[line..p], b"mysql") {
        return None;
    }
    let mut ve = vs;
    while ve < b.len() && !b[ve].is_ascii_whitespace() {
        ve += 1;
    }
    let v = &b[vs..ve];
    (plausible(v) && password_like(v)).then_some((vs, ve))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generic(text: &str) -> Vec<(&'static str, &str)> {
        let config = SecretsConfig::default();
        let mut scan = Scan::new(&config);
        let mut out = Vec::new();
        // Drive the rule as the detector does: at each keyword, left to right.
        let lower = text.to_ascii_lowercase();
        let mut hits: Vec<(usize, usize)> = [
            "key",
            "token",
            "secret",
            "pass",
            "pwd",
            "auth",
            "contraseña",
        ]
        .iter()
        .flat_map(|k| lower.match_indices(k).map(|(i, m)| (i, i + m.len())))
        .collect();
        hits.sort();
        for (s, e) in hits {
            scan.assignment(text, s, e, &mut out);
        }
        out.iter()
            .map(|f| match f.kind {
                Kind::Secret(k) => (k.as_str(), f.text(text)),
                _ => ("?", f.text(text)),
            })
            .collect()
    }

    #[test]
    fn values_assigned_to_key_like_names() {
        assert_eq!(
            generic("  api_key: 964131b5250f067b74c68bd1ee27518e"),
            [("generic", "964131b5250f067b74c68bd1ee27518e")]
        );
        assert_eq!(
            generic(r#"{"clientSecret": "MfFvWzS1AG3QKYNkXu7o2JP6hq6ItLy8"}"#),
            [("generic", "MfFvWzS1AG3QKYNkXu7o2JP6hq6ItLy8")]
        );
        assert_eq!(
            generic("password: Rk8#vQ2!mZ7w"),
            [("generic", "Rk8#vQ2!mZ7w")]
        );
        assert_eq!(
            generic("Mi contraseña es MiPerro#2019 y"),
            [("generic", "MiPerro#2019")]
        );
        assert_eq!(
            generic("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            [("aws_secret_key", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")]
        );
        assert_eq!(
            generic("Server=db;User ID=sa;Password=Qw3rty!9Zx;"),
            [("connection_string", "Qw3rty!9Zx")]
        );
        assert_eq!(
            generic("DB_PASSWORD=Tr0ub4dor&3"),
            [("generic", "Tr0ub4dor&3")]
        );
        assert_eq!(
            generic("/v1?api_key=daeea9213c38f247c45576e85d682727&page=2"),
            [("generic", "daeea9213c38f247c45576e85d682727")]
        );
        assert_eq!(
            generic("The API key is daeea9213c38f247c45576e85d682727."),
            [("generic", "daeea9213c38f247c45576e85d682727")]
        );
    }

    #[test]
    fn code_placeholders_and_public_names_are_skipped() {
        for t in [
            "api_key = os.environ[\"OPENAI_API_KEY\"]",
            "secret_key = settings.SECRET_KEY",
            "token = request.headers.get('Authorization')",
            "password: ${DB_PASSWORD}",
            "API_KEY=your-api-key-here",
            "password: ********",
            "idempotency_key: 8c5e0b1a-1b7b-4c4e-9d6f-0a1b2c3d4e5f",
            "STRIPE_PUBLISHABLE_KEY=pk_live_MgNqvzNBy265Vjw0wP47YCte",
            "\"nextPageToken\": \"CAoQAAbbXyZ12345678\"",
            "max_tokens: 4096",
            "my password is wrong again",
            "the secret sauce is love",
            "if not token:\n    raise AuthError('missing token')",
            "password = db_password",
            "The S3 object key is uploads/2024/06/11/8c5e0b1a-1b7b-4c4e-9d6f-0a1b2c3d4e5f.png",
        ] {
            assert!(generic(t).is_empty(), "{t}: {:?}", generic(t));
        }
    }

    #[test]
    fn url_passwords_skip_placeholders() {
        fn pw(t: &str) -> Option<&str> {
            url_password(t.as_bytes(), t.find("://").unwrap()).map(|(s, e)| &t[s..e])
        }
        assert_eq!(
            pw("postgres://app:Xk29v!qLm83Tz@db:5432/x"),
            Some("Xk29v!qLm83Tz")
        );
        assert_eq!(
            pw("redis://:9dK3mQz81LwX@cache:6379/0"),
            Some("9dK3mQz81LwX")
        );
        assert_eq!(
            pw("jdbc:mysql://r:Sup3r@S3cret!@mysql.local/x"),
            Some("Sup3r@S3cret!")
        );
        assert_eq!(pw("postgres://app:${POSTGRES_PASSWORD}@db/app"), None);
        assert_eq!(pw("postgres://user:password@localhost/db"), None);
        assert_eq!(pw("https://ghp_abc@github.com/x"), None);
        assert_eq!(pw("http://localhost:8080/a@b"), None);
    }

    #[test]
    fn aws_secret_next_to_its_key_id() {
        let text = "AKIA5V24ZDAQWBQYHZ5A / Y2Pseh093Fj9fOptqCWCsuZrJZaVLaPeAU5moHH5 and 11f6ad8ec52a2984abaafd7c3b516503785c2072";
        let mut out = Vec::new();
        aws_secret_near(text.as_bytes(), 20, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(
            out[0].text(text),
            "Y2Pseh093Fj9fOptqCWCsuZrJZaVLaPeAU5moHH5"
        );
        let mut out = Vec::new();
        aws_secret_near(
            b"AKIA5V24ZDAQWBQYHZ5A commit 11f6ad8ec52a2984abaafd7c3b516503785c2072",
            20,
            &mut out,
        );
        assert!(out.is_empty());
    }
}
