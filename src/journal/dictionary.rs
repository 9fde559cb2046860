//! The hospital's dictionary of department and doctor names: a CSV the 信息科 exports from the HIS,
//! so that the office and the report name every department and doctor, including those whose
//! messages carry codes only (settlements, 3101 orders without names).
//!
//! A header row, then one row per department or doctor. Columns are found by name:
//! - the kind: `类别`/`kind`, with `科室`/`dept` or `医生`/`doctor` in the rows; or no kind column
//!   and separate code columns (`科室编码`/`dept_code` with `科室名称`/`dept_name`, `医生编码`/
//!   `doctor_code`/`dr_code` with `医生姓名`/`doctor_name`/`dr_name`), a row giving either or both;
//! - with a kind column: `编码`/`code` and `名称`/`name`.

/// Names by `(kind, code, name)`, kind `dept` or `doctor`.
#[derive(Debug, Default, Clone)]
pub struct Dictionary {
    pub entries: Vec<(String, String, String)>,
}

fn column(headers: &csv::StringRecord, names: &[&str]) -> Option<usize> {
    let clean = |h: &str| h.trim().trim_start_matches('\u{feff}').to_lowercase();
    headers.iter().position(|h| names.iter().any(|n| clean(h) == *n))
}

impl Dictionary {
    /// Reads the CSV text (a UTF-8 byte-order mark is allowed).
    ///
    /// # Errors
    /// Not CSV, or no code and name columns to read (the message names the columns looked for).
    pub fn parse(text: &str) -> Result<Dictionary, String> {
        let mut r = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(text.as_bytes());
        let headers = r.headers().map_err(|e| e.to_string())?.clone();
        let kind = column(&headers, &["类别", "kind", "type"]);
        let code = column(&headers, &["编码", "code"]);
        let name = column(&headers, &["名称", "name", "姓名"]);
        let dept =
            (column(&headers, &["科室编码", "dept_code", "dept_codg"]), column(&headers, &["科室名称", "dept_name"]));
        let doctor = (
            column(&headers, &["医生编码", "doctor_code", "dr_code", "dr_codg"]),
            column(&headers, &["医生姓名", "医生名称", "doctor_name", "dr_name"]),
        );
        let by_kind = matches!((kind, code, name), (Some(_), Some(_), Some(_)));
        let by_columns = matches!(dept, (Some(_), Some(_))) || matches!(doctor, (Some(_), Some(_)));
        if !by_kind && !by_columns {
            return Err("no columns to read: 类别, 编码, 名称 (kind, code, name), or 科室编码/科室名称 and \
                        医生编码/医生姓名 (dept_code/dept_name, doctor_code/doctor_name)"
                .into());
        }
        let mut d = Dictionary::default();
        let get = |rec: &csv::StringRecord, i: Option<usize>| -> Option<String> {
            i.and_then(|i| rec.get(i)).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
        };
        for (n, rec) in r.records().enumerate() {
            let rec = rec.map_err(|e| format!("line {}: {e}", n + 2))?;
            if by_kind {
                let k = match get(&rec, kind).as_deref() {
                    Some("科室" | "dept" | "department") => "dept",
                    Some("医生" | "doctor" | "医师") => "doctor",
                    Some(other) => return Err(format!("line {}: unknown kind {other:?} (科室 or 医生)", n + 2)),
                    None => continue,
                };
                if let (Some(c), Some(nm)) = (get(&rec, code), get(&rec, name)) {
                    d.entries.push((k.to_owned(), c, nm));
                }
                continue;
            }
            for (k, (c, nm)) in [("dept", dept), ("doctor", doctor)] {
                if let (Some(c), Some(nm)) = (get(&rec, c), get(&rec, nm)) {
                    d.entries.push((k.to_owned(), c, nm));
                }
            }
        }
        Ok(d)
    }

    /// Reads the file.
    ///
    /// # Errors
    /// The file cannot be read, or [`Dictionary::parse`] refuses it (the message names the file).
    pub fn load(path: &std::path::Path) -> Result<Dictionary, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Dictionary::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_dictionary_by_kind_with_a_bom() {
        let d = Dictionary::parse(
            "\u{feff}类别,编码,名称\n科室,100301,心血管内科\n医生,D410700000001,李建国\n科室,,空编码\n",
        )
        .unwrap();
        assert_eq!(
            d.entries,
            vec![
                ("dept".to_owned(), "100301".to_owned(), "心血管内科".to_owned()),
                ("doctor".to_owned(), "D410700000001".to_owned(), "李建国".to_owned()),
            ]
        );
    }

    #[test]
    fn reads_a_his_export_with_department_and_doctor_columns() {
        let d = Dictionary::parse("dr_code,dr_name,dept_code,dept_name\nD1,王芳,100302,呼吸内科\n").unwrap();
        assert_eq!(d.entries.len(), 2);
        assert!(d.entries.contains(&("doctor".into(), "D1".into(), "王芳".into())));
        assert!(d.entries.contains(&("dept".into(), "100302".into(), "呼吸内科".into())));
    }

    #[test]
    fn refuses_a_file_without_the_columns_and_an_unknown_kind() {
        assert!(Dictionary::parse("a,b\n1,2\n").unwrap_err().contains("no columns"));
        assert!(Dictionary::parse("类别,编码,名称\n病区,1,一病区\n").unwrap_err().contains("line 2"));
    }
}
