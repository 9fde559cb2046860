//! The 限适应症 matcher: which diagnoses a published 限定支付范围 text names.
//!
//! A term is an ICD-10 disease name (3 to 12 characters) that occurs in the text — 肝硬化,
//! 2型糖尿病, 十二指肠溃疡 — keeping the longest where one term contains another. A term stands for
//! every ICD-10 code whose name contains it; the codes are written as the shortest prefixes that
//! cover exactly them (a whole category `E11` when every code under it matches). The rule then
//! accepts a visit whose diagnosis code starts with one of the prefixes, or whose diagnosis name
//! contains a term. A text with no term is not decided: the reminder always shows it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// Terms shorter than this are too common to decide anything (感染, 肿瘤).
const MIN_TERM_CHARS: usize = 3;
const MAX_TERM_CHARS: usize = 12;
/// More codes than this and the rule keeps the terms only (the names decide).
const MAX_CODES: usize = 120;

pub(crate) struct Matcher {
    /// `(code, name)` in file order.
    icd: Vec<(String, String)>,
    names: HashSet<String>,
    /// Codes by 3-character category and by 5-character subcategory, to compress code sets.
    by_prefix: HashMap<String, usize>,
    cache: std::cell::RefCell<HashMap<String, BTreeSet<usize>>>,
}

impl Matcher {
    pub fn new(tsv: &str) -> Matcher {
        let mut icd = Vec::new();
        for line in tsv.lines().skip(1) {
            let mut f = line.split('\t');
            let (Some(code), Some(name)) = (f.next(), f.next()) else { continue };
            let (code, name) = (code.trim(), name.trim());
            if !code.is_empty() && !name.is_empty() {
                icd.push((code.to_owned(), name.to_owned()));
            }
        }
        let names = icd
            .iter()
            .map(|(_, n)| n.clone())
            .filter(|n| (MIN_TERM_CHARS..=MAX_TERM_CHARS).contains(&n.chars().count()))
            .collect();
        let mut by_prefix: HashMap<String, usize> = HashMap::new();
        for (c, _) in &icd {
            for p in prefixes_of(c) {
                *by_prefix.entry(p.to_owned()).or_default() += 1;
            }
        }
        Matcher { icd, names, by_prefix, cache: Default::default() }
    }

    /// The disease terms a text names, longest first.
    pub fn terms(&self, text: &str) -> Vec<String> {
        let chars: Vec<char> = text.chars().collect();
        let mut found: BTreeSet<String> = BTreeSet::new();
        for i in 0..chars.len() {
            for len in MIN_TERM_CHARS..=MAX_TERM_CHARS.min(chars.len() - i) {
                let s: String = chars[i..i + len].iter().collect();
                if self.names.contains(&s) {
                    found.insert(s);
                }
            }
        }
        let mut terms: Vec<String> =
            found.iter().filter(|t| !found.iter().any(|o| o != *t && o.contains(t.as_str()))).cloned().collect();
        terms.sort_by(|a, b| b.chars().count().cmp(&a.chars().count()).then(a.cmp(b)));
        terms
    }

    fn matching(&self, term: &str) -> BTreeSet<usize> {
        if let Some(s) = self.cache.borrow().get(term) {
            return s.clone();
        }
        let s: BTreeSet<usize> =
            self.icd.iter().enumerate().filter(|(_, (_, n))| n.contains(term)).map(|(i, _)| i).collect();
        self.cache.borrow_mut().insert(term.to_owned(), s.clone());
        s
    }

    /// The code prefixes that cover exactly the codes the terms stand for; `None` past [`MAX_CODES`].
    pub fn codes(&self, terms: &[String]) -> Option<Vec<String>> {
        let mut all = BTreeSet::new();
        for t in terms {
            all.extend(self.matching(t));
        }
        // Count the matched codes under each prefix; a prefix whose every code matched covers them.
        let mut hits: BTreeMap<&str, usize> = BTreeMap::new();
        for &i in &all {
            for p in prefixes_of(&self.icd[i].0) {
                *hits.entry(p).or_default() += 1;
            }
        }
        let mut out: Vec<String> = Vec::new();
        for &i in &all {
            let code = &self.icd[i].0;
            let cover = prefixes_of(code)
                .into_iter()
                .find(|p| hits.get(*p).copied() == self.by_prefix.get(*p).copied())
                .unwrap_or(code.as_str());
            if !out.iter().any(|o| cover.starts_with(o.as_str())) {
                out.retain(|o| !o.starts_with(cover));
                out.push(cover.to_owned());
            }
        }
        out.sort();
        (out.len() <= MAX_CODES).then_some(out)
    }

    /// A diagnosis the terms stand for (for a compliant test claim): its code and name.
    pub fn example(&self, terms: &[String]) -> Option<(&str, &str)> {
        let t = terms.first()?;
        let i = *self.matching(t).iter().next()?;
        Some((self.icd[i].0.as_str(), self.icd[i].1.as_str()))
    }
}

/// `K74.600x001` → `K74`, `K74.6`, `K74.600`: the prefixes a code may be covered by, shortest first.
fn prefixes_of(code: &str) -> Vec<&str> {
    let mut v = Vec::with_capacity(3);
    for n in [3, 5, 7] {
        if code.len() > n && code.is_char_boundary(n) {
            v.push(&code[..n]);
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    const ICD: &str = "code\tname\nK74.600\t肝硬化\nK74.600x001\t失代偿期肝硬化\nK70.300\t酒精性肝硬化\nK70.000\t酒精性脂肪肝\nE11.900\t2型糖尿病\nE11.200\t2型糖尿病性肾病\nJ06.900\t急性上呼吸道感染\n";

    #[test]
    fn finds_the_longest_disease_names_in_a_text() {
        let m = Matcher::new(ICD);
        assert_eq!(
            m.terms("限有明确的肝硬化诊断证据的2型糖尿病患者"),
            vec!["2型糖尿病".to_string(), "肝硬化".to_string()]
        );
        assert!(m.terms("限放化疗。").is_empty());
    }

    #[test]
    fn codes_are_compressed_to_the_prefixes_that_cover_exactly_them() {
        let m = Matcher::new(ICD);
        let codes = m.codes(&["肝硬化".to_string(), "2型糖尿病".to_string()]).unwrap();
        // Every E11 code matches: the category. Of K70 only the 肝硬化 code: the code itself.
        assert_eq!(codes, vec!["E11".to_string(), "K70.3".to_string(), "K74".to_string()]);
        assert_eq!(m.example(&["肝硬化".to_string()]), Some(("K74.600", "肝硬化")));
    }
}
