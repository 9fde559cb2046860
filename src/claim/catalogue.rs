//! The hospital's own item names: its 医保目录对照 export (the HIS's mapping of its catalogue to the
//! national codes), so that messages name the items a fee upload sends as codes only. A CSV with a
//! header row; the columns are found by name: the national code (`med_list_codg` or `hilist_code`),
//! the HIS code (`medins_list_codg`, `hosplist_code` or `fixmedins_hilist_id`) and the name
//! (`medins_list_name`, `fixmedins_hilist_name`, `hilist_name`, `name`). The HIS's own name for its
//! code is preferred; a national code's name serves lines whose HIS code is unknown.

use super::SmolStr;
use rustc_hash::FxHashMap;

#[derive(Debug, Default)]
pub struct Catalogue {
    by_his: FxHashMap<SmolStr, SmolStr>,
    by_code: FxHashMap<SmolStr, SmolStr>,
}

fn column(headers: &csv::StringRecord, names: &[&str]) -> Option<usize> {
    headers.iter().position(|h| names.iter().any(|n| h.trim().eq_ignore_ascii_case(n)))
}

impl Catalogue {
    /// Reads the export.
    ///
    /// # Errors
    /// The text is not CSV, or has no name column, or neither code column.
    pub fn parse(text: &str) -> Result<Catalogue, String> {
        let mut r = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(text.as_bytes());
        let headers = r.headers().map_err(|e| e.to_string())?.clone();
        let code = column(&headers, &["med_list_codg", "hilist_code"]);
        let his = column(&headers, &["medins_list_codg", "hosplist_code", "fixmedins_hilist_id"]);
        let name = column(&headers, &["medins_list_name", "fixmedins_hilist_name", "hilist_name", "name"])
            .ok_or("no name column (medins_list_name, fixmedins_hilist_name, hilist_name or name)")?;
        if code.is_none() && his.is_none() {
            return Err("no code column (med_list_codg or medins_list_codg)".into());
        }
        let mut c = Catalogue::default();
        for (n, rec) in r.records().enumerate() {
            let rec = rec.map_err(|e| format!("line {}: {e}", n + 2))?;
            let Some(item) = rec.get(name).map(str::trim).filter(|s| !s.is_empty()) else { continue };
            let item = SmolStr::new(item);
            if let Some(h) = his.and_then(|i| rec.get(i)).map(str::trim).filter(|s| !s.is_empty()) {
                c.by_his.entry(SmolStr::new(h)).or_insert_with(|| item.clone());
            }
            if let Some(k) = code.and_then(|i| rec.get(i)).map(str::trim).filter(|s| !s.is_empty()) {
                c.by_code.entry(SmolStr::new(k)).or_insert(item);
            }
        }
        Ok(c)
    }

    pub fn len(&self) -> usize {
        self.by_his.len().max(self.by_code.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The name of a line's item: by its HIS code, else by its national code.
    pub fn name(&self, his_code: &str, code: &str) -> Option<SmolStr> {
        self.by_his.get(his_code).or_else(|| self.by_code.get(code)).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_his_code_first_then_the_national_code() {
        let text = "medins_list_codg,medins_list_name,med_list_codg,hilist_name\n\
                    H0012,硝苯地平控释片（拜新同）,XC08CAA079A001010104321,硝苯地平控释片\n";
        let c = Catalogue::parse(text).unwrap();
        assert_eq!(c.name("H0012", "X").as_deref(), Some("硝苯地平控释片（拜新同）"));
        assert_eq!(c.name("OTHER", "XC08CAA079A001010104321").as_deref(), Some("硝苯地平控释片（拜新同）"));
        assert_eq!(c.name("OTHER", "Y"), None);
        assert!(Catalogue::parse("a,b\n1,2\n").unwrap_err().contains("no name column"));
    }
}
