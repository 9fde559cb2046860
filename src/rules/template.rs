//! Message templates: `"【{item}】限{allowed}使用"`, compiled once per pack.

use super::decision::Val;

#[derive(Debug, Clone)]
enum Seg {
    Lit(Box<str>),
    Var(&'static str),
}

/// A compiled message template. Every variable was checked against the kind's list at compile time.
#[derive(Debug, Clone)]
pub struct Template {
    segs: Vec<Seg>,
    /// The literal text's length plus room for the variables: one allocation per rendered message.
    cap: usize,
}

impl Template {
    /// # Errors
    /// An unknown variable, an unclosed `{`, a stray `}`.
    pub fn compile(src: &str, vars: &[&'static str]) -> Result<Template, String> {
        let mut segs = Vec::new();
        let mut lit = String::new();
        let mut chars = src.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    lit.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(ch) => name.push(ch),
                            None => return Err(format!("message: unclosed '{{' in {src:?}")),
                        }
                    }
                    let var =
                        std::iter::once(&"rule").chain(vars.iter()).find(|v| **v == name.trim()).ok_or_else(|| {
                            format!("message: unknown variable {{{name}}}; this kind offers: rule, {}", vars.join(", "))
                        })?;
                    if !lit.is_empty() {
                        segs.push(Seg::Lit(std::mem::take(&mut lit).into()));
                    }
                    segs.push(Seg::Var(var));
                }
                '}' => return Err(format!("message: stray '}}' in {src:?}")),
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            segs.push(Seg::Lit(lit.into()));
        }
        let cap = segs.iter().map(|s| if let Seg::Lit(l) = s { l.len() } else { 24 }).sum();
        Ok(Template { segs, cap })
    }

    pub fn render(&self, rule_name: &str, ev: &[(&'static str, Val)]) -> String {
        let mut out = String::with_capacity(self.cap);
        for s in &self.segs {
            match s {
                Seg::Lit(l) => out.push_str(l),
                Seg::Var("rule") => out.push_str(rule_name),
                Seg::Var(v) => {
                    if let Some((_, val)) = ev.iter().find(|(k, _)| k == v) {
                        val.write_text(&mut out);
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_variables_and_refuses_unknown_ones() {
        let t = Template::compile("【{item}】限{allowed}，{{原样}} {rule}", &["item", "allowed"]).unwrap();
        let s = t.render("限性别", &[("item", Val::Str("经阴道B超".into())), ("allowed", Val::Str("女性".into()))]);
        assert_eq!(s, "【经阴道B超】限女性，{原样} 限性别");
        assert!(Template::compile("{nope}", &["item"]).unwrap_err().contains("unknown variable {nope}"));
        assert!(Template::compile("{item", &["item"]).is_err());
        assert!(Template::compile("a}b", &["item"]).is_err());
    }
}
