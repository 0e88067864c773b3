//! Config errors and their collection: [`ConfigError`] is what loading a config returns, and
//! [`Problems`] gathers every semantic problem of one validation pass, so that a user fixing a
//! file sees all its mistakes at once (each with its key path) instead of one per run.

use std::fmt;

/// A configuration error, with the dotted path of the offending key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Yaml(String),
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    /// Several problems found in one pass: a count, then one problem per line.
    #[error("{}", ManyProblems(.0))]
    Many(Vec<ConfigError>),
}

pub fn invalid(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        path: path.into(),
        message: message.into(),
    }
}

impl ConfigError {
    /// Each problem on its own, however many this error holds.
    pub fn problems(&self) -> Vec<&ConfigError> {
        match self {
            ConfigError::Many(all) => all.iter().flat_map(ConfigError::problems).collect(),
            one => vec![one],
        }
    }
}

struct ManyProblems<'a>(&'a [ConfigError]);

impl fmt::Display for ManyProblems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} problems:", self.0.len())?;
        for problem in self.0 {
            write!(f, "\n  {problem}")?;
        }
        Ok(())
    }
}

/// The semantic problems found so far in one validation pass.
#[derive(Debug, Default)]
pub struct Problems(Vec<ConfigError>);

impl Problems {
    pub fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(invalid(path, message));
    }

    /// Keeps the error of a check that reports at most one (or a [`ConfigError::Many`]).
    pub fn check(&mut self, result: Result<(), ConfigError>) {
        match result {
            Ok(()) => {}
            Err(ConfigError::Many(all)) => self.0.extend(all),
            Err(e) => self.0.push(e),
        }
    }

    /// Like [`Problems::check`], but leaves out what the result says about keys this pass has
    /// a problem with already (a value left as `${VAR}` need not also be "not a URL").
    pub fn check_new(&mut self, result: Result<(), ConfigError>) {
        let known: Vec<String> = self.paths().map(str::to_owned).collect();
        let Err(e) = result else {
            return;
        };
        let fresh = |p: &ConfigError| match p {
            ConfigError::Invalid { path, .. } => !known.contains(path),
            _ => true,
        };
        match e {
            ConfigError::Many(all) => self.0.extend(all.into_iter().filter(|p| fresh(p))),
            one if fresh(&one) => self.0.push(one),
            _ => {}
        }
    }

    fn paths(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter_map(|p| match p {
            ConfigError::Invalid { path, .. } => Some(path.as_str()),
            _ => None,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok` when nothing was found; a single problem as itself, so its message starts with its
    /// key path; several as [`ConfigError::Many`].
    pub fn finish(self) -> Result<(), ConfigError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self.into_error())
        }
    }

    /// What was found, as one error (see [`Problems::finish`]).
    pub fn into_error(mut self) -> ConfigError {
        if self.0.len() == 1 {
            self.0.remove(0)
        } else {
            ConfigError::Many(self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_problems_print_one_per_line() {
        let mut p = Problems::default();
        p.add("a.b", "must be at least 1");
        p.check(Err(invalid("c[0]", "unknown model \"x\"")));
        let e = p.finish().unwrap_err();
        assert_eq!(
            e.to_string(),
            "2 problems:\n  a.b: must be at least 1\n  c[0]: unknown model \"x\""
        );
        assert_eq!(e.problems().len(), 2);
    }

    #[test]
    fn one_problem_is_itself() {
        let mut p = Problems::default();
        p.add("a", "bad");
        assert_eq!(p.finish().unwrap_err().to_string(), "a: bad");
    }
}
