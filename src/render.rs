//! Templates: turns a disclosure into the exact bytes a channel sends.
//! Owns: loading every template under `templates/` at start-up (so a broken one fails the
//! start, not a delivery), the typed template context, and rendering. Leaves the per-channel
//! checks of the result (valid JSON, length limits) to the channel.

use std::path::Path;

use minijinja::Environment;
use serde::Serialize;

use crate::disclosure::Disclosure;
use crate::domain::{Action, ChannelKind};

/// What a template sees. `d` is the disclosure with every field present (absent optional
/// fields are `null`), so templates can write `d.doc_no|tojson` without guards.
#[derive(Debug, Serialize)]
pub struct RenderContext<'a> {
    pub d: serde_json::Value,
    pub action: Action,
    pub channel: &'a str,
    pub channel_kind: ChannelKind,
    pub category_name: &'a str,
    pub withdraw_reason: Option<&'a str>,
}

impl<'a> RenderContext<'a> {
    pub fn new(
        d: &Disclosure,
        action: Action,
        channel: &'a str,
        channel_kind: ChannelKind,
        category_name: &'a str,
        withdraw_reason: Option<&'a str>,
    ) -> Self {
        let mut value = serde_json::to_value(d).expect("a Disclosure always serializes");
        if let Some(map) = value.as_object_mut() {
            for f in crate::disclosure::TOP_FIELDS {
                map.entry(*f).or_insert(serde_json::Value::Null);
            }
        }
        RenderContext {
            d: value,
            action,
            channel,
            channel_kind,
            category_name,
            withdraw_reason,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("模板 {template}：{message}")]
pub struct RenderError {
    pub template: String,
    pub message: String,
}

pub struct Renderer {
    env: Environment<'static>,
}

impl Renderer {
    /// Loads and compiles every `*.j2` file under `dir`; every broken template is reported.
    pub fn load(dir: &Path) -> Result<Renderer, Vec<String>> {
        Renderer::load_layered(&[dir.to_path_buf()])
    }

    /// Like `load` over several folders in order: a template of a later folder replaces the
    /// one of the same relative name from an earlier one (a department's own templates over
    /// the top-level ones).
    pub fn load_layered(dirs: &[std::path::PathBuf]) -> Result<Renderer, Vec<String>> {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        let mut problems = Vec::new();
        let mut files = Vec::new();
        for dir in dirs {
            let mut layer = Vec::new();
            collect_templates(dir, dir, &mut layer, &mut problems);
            layer.sort();
            files.extend(layer);
        }
        for (name, path) in files {
            match std::fs::read_to_string(&path) {
                Ok(source) => {
                    if let Err(e) = env.add_template_owned(name.clone(), source) {
                        problems.push(format!(
                            "模板 {}：语法错误：{}",
                            path.display(),
                            describe(&e)
                        ));
                    }
                }
                Err(e) => problems.push(format!("模板 {}：无法读取：{e}", path.display())),
            }
        }
        if problems.is_empty() {
            Ok(Renderer { env })
        } else {
            Err(problems)
        }
    }

    pub fn has(&self, template: &str) -> bool {
        self.env.get_template(template).is_ok()
    }

    pub fn render(&self, template: &str, ctx: &RenderContext<'_>) -> Result<Vec<u8>, RenderError> {
        let err = |message: String| RenderError {
            template: template.to_string(),
            message,
        };
        let t = self
            .env
            .get_template(template)
            .map_err(|_| err("模板不存在".into()))?;
        let out = t.render(ctx).map_err(|e| err(describe(&e)))?;
        Ok(out.into_bytes())
    }
}

fn describe(e: &minijinja::Error) -> String {
    let mut s = e.to_string();
    if let Some(line) = e.line() {
        s.push_str(&format!("（第 {line} 行）"));
    }
    s
}

fn collect_templates(
    root: &Path,
    dir: &Path,
    out: &mut Vec<(String, std::path::PathBuf)>,
    problems: &mut Vec<String>,
) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            problems.push(format!("模板目录 {}：无法读取：{e}", dir.display()));
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_templates(root, &path, out, problems);
        } else if path.extension().is_some_and(|x| x == "j2") {
            let name = path
                .strip_prefix(root)
                .expect("walked from root")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            out.push((name, path));
        }
    }
}

/// A built-in disclosure that `check-config` renders every template against.
pub fn sample_disclosure(category: &str) -> Disclosure {
    let body = "<p>根据《城乡居民最低生活保障实施办法》，现将本季度低保资金发放情况公示如下。</p>";
    serde_json::from_value(serde_json::json!({
        "disclosure_id": "sample-2017-00001",
        "revision": 1,
        "title": "关于2017年第一季度城乡低保资金发放情况的公示",
        "short_title": "一季度低保资金发放公示",
        "publisher": "漳平市民政局",
        "formed_date": "2017-04-03",
        "publish_date": "2017-04-07",
        "category": category,
        "index_no": "003781234/2017-00001",
        "doc_no": "漳民〔2017〕5号",
        "abstract": "公示一季度城乡低保资金发放情况。",
        "body_html": body,
        "review": {
            "content_sha256": crate::disclosure::sha256_hex(body.as_bytes()),
            "steps": [
                {"role": "初审", "by": "u102", "at": "2017-04-05T09:12:00+08:00"},
                {"role": "复审", "by": "u031", "at": "2017-04-06T15:40:00+08:00"},
                {"role": "终审", "by": "u007", "at": "2017-04-07T08:55:00+08:00"}
            ]
        }
    }))
    .expect("the sample disclosure is valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_renderer() -> Renderer {
        Renderer::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("templates")).unwrap()
    }

    #[test]
    fn gov_site_template_renders_valid_json_with_every_field() {
        let r = repo_renderer();
        let d = sample_disclosure("mzfp");
        let ctx = RenderContext::new(
            &d,
            Action::Publish,
            "gov_site",
            ChannelKind::GovSite,
            "民政扶贫救灾社会社保就业",
            None,
        );
        let out = r.render("gov_site/disclosure.json.j2", &ctx).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["disclosure_id"], "sample-2017-00001");
        assert_eq!(v["action"], "publish");
        assert_eq!(v["title"], d.title);
        assert_eq!(v["body_html"], d.body_html);
        assert_eq!(v["valid_to"], serde_json::Value::Null);
        assert_eq!(v["theme_category"][0], "民政扶贫救灾社会社保就业");
    }

    #[test]
    fn withdrawal_renders_its_reason() {
        let r = repo_renderer();
        let d = sample_disclosure("mzfp");
        let ctx = RenderContext::new(
            &d,
            Action::Withdraw,
            "gov_site",
            ChannelKind::GovSite,
            "x",
            Some("信息有误"),
        );
        let out = r.render("gov_site/disclosure.json.j2", &ctx).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["action"], "withdraw");
        assert_eq!(v["reason"], "信息有误");
        assert!(v.get("body_html").is_none());
    }

    #[test]
    fn rendering_is_deterministic() {
        let r = repo_renderer();
        let d = sample_disclosure("mzfp");
        let render = || {
            let ctx = RenderContext::new(
                &d,
                Action::Publish,
                "gov_site",
                ChannelKind::GovSite,
                "x",
                None,
            );
            r.render("gov_site/disclosure.json.j2", &ctx).unwrap()
        };
        assert_eq!(render(), render());
    }

    #[test]
    fn a_broken_template_is_reported_with_its_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("x")).unwrap();
        std::fs::write(dir.path().join("x/bad.json.j2"), "{{ d.title ").unwrap();
        let problems = Renderer::load(dir.path()).err().unwrap();
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("bad.json.j2"), "{}", problems[0]);
    }
}
