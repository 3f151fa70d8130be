//! Reads a `/metrics` page (OpenMetrics text) the way a scraper does: one sample per line,
//! found by metric name and label set, its value as a number.

use std::collections::BTreeMap;
use std::fmt;

/// One scraped page.
#[derive(Clone)]
pub struct Metrics {
    page: String,
    samples: Vec<Sample>,
}

#[derive(Clone, Debug, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

impl Metrics {
    /// Parses a page; panics on a sample line that is not `name[{labels}] value`.
    pub fn parse(page: &str) -> Self {
        let samples = page
            .lines()
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(|line| parse_sample(line).unwrap_or_else(|| panic!("bad sample line {line:?}")))
            .collect();
        Self {
            page: page.to_owned(),
            samples,
        }
    }

    /// The value of the sample with exactly this name and these labels (in any order).
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<u64> {
        let wanted: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.samples
            .iter()
            .find(|s| s.name == name && s.labels == wanted)
            .map(|s| whole(s.value, name))
    }

    /// Like [`value`](Self::value), failing the test (with the page) when the sample is
    /// missing.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.value(name, labels)
            .unwrap_or_else(|| panic!("no {name}{labels:?} in\n{}", self.page))
    }

    /// The sum of every sample of `name`, whatever its labels.
    pub fn sum(&self, name: &str) -> u64 {
        self.samples
            .iter()
            .filter(|s| s.name == name)
            .map(|s| whole(s.value, name))
            .sum()
    }
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.page)
    }
}

/// Every meshchat metric counts something, so its value is a whole number.
fn whole(value: f64, name: &str) -> u64 {
    assert!(
        value >= 0.0 && value.fract() == 0.0,
        "{name} = {value} is not a count"
    );
    value as u64
}

/// `name{k="v",...} value [timestamp]`, with `\"`, `\\` and `\n` escapes in label values.
fn parse_sample(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = line[..name_end].to_owned();
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(after) = rest.strip_prefix('{') {
        let mut chars = after.char_indices();
        let mut key = String::new();
        loop {
            let (i, c) = chars.next()?;
            match c {
                '}' => {
                    rest = &after[i + 1..];
                    break;
                }
                ',' if key.is_empty() => {}
                '=' => {
                    if chars.next()?.1 != '"' {
                        return None;
                    }
                    let mut value = String::new();
                    loop {
                        match chars.next()?.1 {
                            '"' => break,
                            '\\' => match chars.next()?.1 {
                                'n' => value.push('\n'),
                                other => value.push(other),
                            },
                            other => value.push(other),
                        }
                    }
                    labels.insert(std::mem::take(&mut key), value);
                }
                c => key.push(c),
            }
        }
    }
    let value = rest.split_whitespace().next()?.parse().ok()?;
    Some(Sample {
        name,
        labels,
        value,
    })
}
