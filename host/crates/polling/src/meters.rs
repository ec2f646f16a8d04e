//! Meter selection in polling.yaml: Python's `fnmatch` patterns (POSIX, case-sensitive:
//! `*`, `?`, `[seq]`, `[!seq]`) and Ceilometer's include/exclude rules
//! (`Source.is_supported`, spec §1.4).

/// One compiled `fnmatch` pattern, with the semantics of Python's `fnmatch.translate`:
/// no escape character, an unclosed `[` is a literal, `]` right after `[` or `[!` is a
/// member, a reversed range such as `[z-a]` is removed, and `*` matches across `.`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    tokens: Vec<Token>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(char),
    AnyChar,
    AnyRun,
    Class(CharClass),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct CharClass {
    negated: bool,
    singles: Vec<char>,
    ranges: Vec<(char, char)>,
}

impl CharClass {
    fn matches(&self, c: char) -> bool {
        let member =
            self.singles.contains(&c) || self.ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi);
        member != self.negated
    }
}

impl Pattern {
    pub fn new(pattern: &str) -> Pattern {
        let pat: Vec<char> = pattern.chars().collect();
        let n = pat.len();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < n {
            let c = pat[i];
            i += 1;
            match c {
                '*' => {
                    if tokens.last() != Some(&Token::AnyRun) {
                        tokens.push(Token::AnyRun);
                    }
                }
                '?' => tokens.push(Token::AnyChar),
                '[' => {
                    let mut j = i;
                    if j < n && pat[j] == '!' {
                        j += 1;
                    }
                    if j < n && pat[j] == ']' {
                        j += 1;
                    }
                    while j < n && pat[j] != ']' {
                        j += 1;
                    }
                    if j >= n {
                        tokens.push(Token::Literal('['));
                    } else {
                        tokens.push(bracket(&pat, i, j));
                        i = j + 1;
                    }
                }
                other => tokens.push(Token::Literal(other)),
            }
        }
        Pattern { tokens }
    }

    /// Whether `name` matches the whole pattern.
    pub fn matches(&self, name: &str) -> bool {
        let s: Vec<char> = name.chars().collect();
        // Iterative wildcard matching with backtracking to the last `*`: linear for the
        // patterns operators write.
        let (mut ti, mut si) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        while si < s.len() {
            match self.tokens.get(ti) {
                Some(Token::AnyRun) => {
                    star = Some((ti, si));
                    ti += 1;
                    continue;
                }
                Some(tok) if token_matches(tok, s[si]) => {
                    ti += 1;
                    si += 1;
                    continue;
                }
                _ => {}
            }
            match star {
                Some((st, ss)) => {
                    ti = st + 1;
                    si = ss + 1;
                    star = Some((st, ss + 1));
                }
                None => return false,
            }
        }
        self.tokens[ti..].iter().all(|t| *t == Token::AnyRun)
    }
}

fn token_matches(tok: &Token, c: char) -> bool {
    match tok {
        Token::Literal(l) => *l == c,
        Token::AnyChar => true,
        Token::AnyRun => true,
        Token::Class(class) => class.matches(c),
    }
}

/// The set between `pat[i-1] == '['` and `pat[j] == ']'`, following CPython's
/// `fnmatch._translate` chunking of hyphens.
fn bracket(pat: &[char], start: usize, j: usize) -> Token {
    let mut i = start;
    let negated = pat[i] == '!';
    // CPython keeps the '!' inside the first chunk and checks it at the end.
    let mut chunks: Vec<Vec<char>> = Vec::new();
    if !pat[i..j].contains(&'-') {
        chunks.push(pat[i..j].to_vec());
    } else {
        let mut k = if negated { i + 2 } else { i + 1 };
        loop {
            let found = (k..j).find(|&x| pat[x] == '-');
            let Some(h) = found else { break };
            chunks.push(pat[i..h].to_vec());
            i = h + 1;
            k = h + 3;
        }
        let last = pat[i..j].to_vec();
        if last.is_empty() {
            if let Some(prev) = chunks.last_mut() {
                prev.push('-');
            }
        } else {
            chunks.push(last);
        }
        // Remove empty (reversed) ranges, right to left, as CPython does.
        let mut k = chunks.len();
        while k > 1 {
            k -= 1;
            let (Some(&lo), Some(&hi)) = (chunks[k - 1].last(), chunks[k].first()) else {
                continue;
            };
            if lo > hi {
                let mut merged = chunks[k - 1][..chunks[k - 1].len() - 1].to_vec();
                merged.extend_from_slice(&chunks[k][1..]);
                chunks[k - 1] = merged;
                chunks.remove(k);
            }
        }
    }
    // chunks joined by '-' where each join is a range between the neighbouring chars.
    let mut flat: Vec<char> = Vec::new();
    let mut range_after: Vec<bool> = Vec::new();
    for (idx, chunk) in chunks.iter().enumerate() {
        for (ci, &c) in chunk.iter().enumerate() {
            flat.push(c);
            range_after.push(idx + 1 < chunks.len() && ci + 1 == chunk.len());
        }
    }
    // A leading '!' (still first after range removal) negates the set.
    let negated = flat.first() == Some(&'!');
    let offset = usize::from(negated);
    let mut class = CharClass {
        negated,
        singles: Vec::new(),
        ranges: Vec::new(),
    };
    let mut x = offset;
    while x < flat.len() {
        if range_after[x] && x + 1 < flat.len() {
            class.ranges.push((flat[x], flat[x + 1]));
            x += 2;
        } else {
            class.singles.push(flat[x]);
            x += 1;
        }
    }
    Token::Class(class)
}

/// A source's `meters` list, compiled: Ceilometer's `Source.is_supported`.
#[derive(Debug, Clone)]
pub struct MeterFilter {
    entries: Vec<String>,
    includes: Vec<Pattern>,
    excludes: Vec<Pattern>,
}

impl MeterFilter {
    /// Compile a meters list. The list is assumed valid (see `definition`): non-empty
    /// strings, not mixing includes with excludes.
    pub fn new<S: AsRef<str>>(entries: &[S]) -> MeterFilter {
        let mut includes = Vec::new();
        let mut excludes = Vec::new();
        for e in entries {
            let e = e.as_ref();
            match e.strip_prefix('!') {
                Some(rest) => excludes.push(Pattern::new(rest)),
                None => includes.push(Pattern::new(e)),
            }
        }
        MeterFilter {
            entries: entries.iter().map(|e| e.as_ref().to_string()).collect(),
            includes,
            excludes,
        }
    }

    /// The entries as written in polling.yaml.
    pub fn entries(&self) -> &[String] {
        &self.entries
    }

    /// Ceilometer's rules: a matching exclusion rejects; else a matching inclusion
    /// accepts; else the meter is accepted only if every entry is an exclusion.
    pub fn is_supported(&self, meter: &str) -> bool {
        if self.excludes.iter().any(|p| p.matches(meter)) {
            return false;
        }
        if self.includes.iter().any(|p| p.matches(meter)) {
            return true;
        }
        self.includes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        Pattern::new(p).matches(s)
    }

    #[test]
    fn fnmatch_basics() {
        assert!(m("*", ""));
        assert!(m("*", "disk.device.read.bytes"));
        assert!(m("disk.*", "disk.device.read.bytes"));
        assert!(!m("disk.*", "disk"));
        assert!(m("cpu", "cpu"));
        assert!(!m("cpu", "CPU"), "case-sensitive on POSIX");
        assert!(!m("cpu", "cpu.delta"));
        assert!(m("c?u", "cpu"));
        assert!(!m("c?u", "cu"));
        assert!(m("*cpu", "vcpu"));
        assert!(m("*.bytes", "network.incoming.bytes"));
        assert!(m("a*b*c", "axxbyyc"));
        assert!(!m("a*b*c", "axxbyy"));
        assert!(m("**x", "abx"));
    }

    #[test]
    fn fnmatch_brackets_like_cpython() {
        assert!(m("[cm]*", "cpu"));
        assert!(m("[cm]*", "memory"));
        assert!(!m("[cm]*", "disk"));
        assert!(m("[!cm]*", "disk"));
        assert!(!m("[!cm]*", "cpu"));
        assert!(m("[a-c]pu", "cpu"));
        assert!(!m("[a-b]pu", "cpu"));
        assert!(m("[]]", "]"));
        assert!(m("[!]]", "a"));
        assert!(!m("[!]]", "]"));
        // unclosed bracket is a literal
        assert!(m("[cpu", "[cpu"));
        assert!(!m("[cpu", "c"));
        // hyphen first or last is literal
        assert!(m("[-a]", "-"));
        assert!(m("[a-]", "-"));
        assert!(m("[!-a]", "b"));
        assert!(!m("[!-a]", "-"));
        // reversed range is removed: [z-a] never matches
        assert!(!m("[z-a]", "m"));
        assert!(!m("[z-a]", "z"));
        // [!b-a]: negated empty set matches any character
        assert!(m("[!b-a]", "q"));
        // ^ is literal, not negation
        assert!(m("[^a]", "^"));
        assert!(m("[^a]", "a"));
        assert!(!m("[^a]", "b"));
        // backslash is literal
        assert!(m("a\\b", "a\\b"));
        assert!(m("[\\]", "\\"));
        // a second hyphen right after a range end is literal: [a-c-e] = a..c, '-', 'e'
        assert!(m("[a-c-e]", "-"));
        assert!(m("[a-c-e]", "e"));
        assert!(!m("[a-c-e]", "d"));
    }

    /// The truth table of spec §1.4, verified there against Ceilometer's code.
    #[test]
    fn ceilometer_truth_table() {
        let meters = ["cpu", "cpu.delta", "memory.usage", "disk.device.read.bytes"];
        let table: &[(&[&str], [bool; 4])] = &[
            (&["*"], [true, true, true, true]),
            (&["cpu", "memory*"], [true, false, true, false]),
            (&["!cpu"], [false, true, true, true]),
            (&["*", "!cpu*"], [false, false, true, true]),
            (&["!*"], [false, false, false, false]),
            (&["*cpu", "!disk*"], [true, false, false, false]),
            (&["[cm]*"], [true, true, true, false]),
        ];
        for (entries, want) in table {
            let f = MeterFilter::new(entries);
            for (meter, want) in meters.iter().zip(want) {
                assert_eq!(f.is_supported(meter), *want, "{entries:?} vs {meter}");
            }
        }
    }
}
