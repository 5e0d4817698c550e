//! `[wechat_callback]` in config.toml: where the callback listens, which WeChat channel
//! (appid, tokens, API) it answers for, the EncodingAESKey, the time budget, and the menu
//! with what each button does. Adding a menu entry is a config change, never a code change.
//! Also the menu's WeChat limits (wechat-protocol.md §7), checked by `validate` and by
//! `gongkai menu push`.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Top-level buttons WeChat accepts.
pub const MAX_TOP_BUTTONS: usize = 3;
/// Sub-buttons per top-level button.
pub const MAX_SUB_BUTTONS: usize = 5;
/// Name length in UTF-8 bytes: 16 top-level (≈ 5 汉字), 60 sub (20 汉字).
pub const MAX_TOP_NAME_BYTES: usize = 16;
pub const MAX_SUB_NAME_BYTES: usize = 60;
pub const MAX_KEY_BYTES: usize = 128;
pub const MAX_URL_BYTES: usize = 1024;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WechatCallbackSettings {
    /// The path WeChat is configured with ("服务器配置" URL). `/wechat/{channel}/callback`
    /// keeps working too.
    pub path: String,
    /// The WeChat channel (channels/<name>.toml) whose appid, callback token and API the
    /// callback on `path` uses.
    pub channel: String,
    /// EncodingAESKey (43 characters) for 兼容/安全 mode: an environment variable name …
    pub encoding_aes_key_env: Option<String>,
    /// … or a file (relative to the config folder). None = plain mode only.
    pub encoding_aes_key_file: Option<PathBuf>,
    /// Larger bodies are answered 413 without reading them.
    pub max_body_bytes: usize,
    /// Requests whose timestamp is further from now than this are refused (403).
    #[serde(with = "humantime_serde")]
    pub timestamp_window: Duration,
    /// Work that takes longer answers `success` and sends its result as a
    /// customer-service message (WeChat gives up after 5 s).
    #[serde(with = "humantime_serde")]
    pub reply_budget: Duration,
    /// How many disclosures a list reply shows.
    pub list_size: usize,
    /// How long a menu list or a search answer is reused at most (it is dropped at once
    /// when this instance delivers or withdraws something; the limit bounds how late
    /// another instance's changes show). 0 = compute every answer.
    #[serde(with = "humantime_serde")]
    pub cache_ttl: Duration,
    /// How long the answers kept for WeChat's retries are kept (WeChat retries within
    /// 15 s; a day also covers a restart). Older ones are forgotten every hour.
    #[serde(with = "humantime_serde")]
    pub keep_answers: Duration,
    /// Templates of the replies (relative to templates_dir).
    pub templates: ReplyTemplates,
    /// The custom menu (`gongkai menu push`) and what each `click` button answers.
    pub menu: Vec<MenuButton>,
}

impl Default for WechatCallbackSettings {
    fn default() -> Self {
        WechatCallbackSettings {
            path: "/wechat".into(),
            channel: "wechat".into(),
            encoding_aes_key_env: None,
            encoding_aes_key_file: None,
            max_body_bytes: 64 * 1024,
            timestamp_window: Duration::from_secs(300),
            reply_budget: Duration::from_secs(4),
            list_size: 5,
            cache_ttl: Duration::from_secs(1),
            keep_answers: Duration::from_secs(24 * 3600),
            templates: ReplyTemplates::default(),
            menu: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplyTemplates {
    /// Answer to a new follower (`subscribe`).
    pub welcome: String,
    /// A list of disclosures (latest, latest in a category, search results).
    pub list: String,
    /// A search that found nothing.
    pub not_found: String,
}

impl Default for ReplyTemplates {
    fn default() -> Self {
        ReplyTemplates {
            welcome: "wechat_reply/welcome.txt.j2".into(),
            list: "wechat_reply/list.txt.j2".into(),
            not_found: "wechat_reply/not_found.txt.j2".into(),
        }
    }
}

/// One menu button. A button with `sub_button` is a group (no type/key/url).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MenuButton {
    pub name: String,
    /// WeChat's button type; default `click` when a key is set, `view` when a url is.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub key: Option<String>,
    pub url: Option<String>,
    /// What a `click` answers: `latest` (the latest `count` published disclosures),
    /// `category` (the latest in `category`), `text` (the fixed `text`).
    pub action: Option<String>,
    pub count: Option<usize>,
    pub category: Option<String>,
    pub text: Option<String>,
    /// The title line of a list reply; default: the button's name.
    pub heading: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sub_button: Vec<MenuButton>,
}

/// What a click key does, resolved from the menu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClickAction {
    Latest {
        heading: String,
        count: Option<usize>,
    },
    Category {
        heading: String,
        category: String,
        count: Option<usize>,
    },
    Text(String),
}

impl MenuButton {
    fn effective_type(&self) -> Option<&str> {
        self.kind.as_deref().or(if self.key.is_some() {
            Some("click")
        } else if self.url.is_some() {
            Some("view")
        } else {
            None
        })
    }

    fn action(&self) -> Option<ClickAction> {
        let heading = self.heading.clone().unwrap_or_else(|| self.name.clone());
        match self.action.as_deref()? {
            "latest" => Some(ClickAction::Latest {
                heading,
                count: self.count,
            }),
            "category" => Some(ClickAction::Category {
                heading,
                category: self.category.clone()?,
                count: self.count,
            }),
            "text" => Some(ClickAction::Text(self.text.clone()?)),
            _ => None,
        }
    }
}

impl WechatCallbackSettings {
    /// Every leaf button, top level and sub.
    pub fn leaves(&self) -> impl Iterator<Item = &MenuButton> {
        self.menu.iter().flat_map(|b| {
            if b.sub_button.is_empty() {
                vec![b]
            } else {
                b.sub_button.iter().collect()
            }
        })
    }

    /// What `key` does, if a click button has it.
    pub fn click(&self, key: &str) -> Option<ClickAction> {
        self.leaves()
            .find(|b| b.key.as_deref() == Some(key))
            .and_then(MenuButton::action)
    }

    /// The names of the buttons that answer something (for the welcome and not-found texts).
    pub fn option_names(&self) -> Vec<String> {
        self.leaves()
            .filter(|b| b.action.is_some())
            .map(|b| b.name.clone())
            .collect()
    }

    /// The `menu/create` body (wechat-protocol.md §7).
    pub fn menu_json(&self) -> serde_json::Value {
        fn one(b: &MenuButton) -> serde_json::Value {
            let mut v = serde_json::json!({ "name": b.name });
            if !b.sub_button.is_empty() {
                v["sub_button"] = b.sub_button.iter().map(one).collect();
                return v;
            }
            if let Some(t) = b.effective_type() {
                v["type"] = t.into();
            }
            if let Some(k) = &b.key {
                v["key"] = k.as_str().into();
            }
            if let Some(u) = &b.url {
                v["url"] = u.as_str().into();
            }
            v
        }
        serde_json::json!({ "button": self.menu.iter().map(one).collect::<Vec<_>>() })
    }

    /// Every problem with the callback settings and the menu, each naming the button.
    pub fn validate(&self, categories: &[String]) -> Vec<String> {
        let mut p = Vec::new();
        if !self.path.starts_with('/') || self.path.len() < 2 || self.path.contains('{') {
            p.push(format!(
                "wechat_callback.path = {:?}：应为以 / 开头的固定路径，如 /wechat",
                self.path
            ));
        }
        if self.max_body_bytes == 0 {
            p.push("wechat_callback.max_body_bytes：必须大于 0".into());
        }
        if self.list_size == 0 || self.list_size > 20 {
            p.push("wechat_callback.list_size：应在 1 到 20 之间".into());
        }
        if self.keep_answers < Duration::from_secs(60) {
            p.push(format!(
                "wechat_callback.keep_answers = {:?}：至少 1 分钟（微信在 15 秒内重试，答复须保留到重试结束）",
                self.keep_answers
            ));
        }
        if self.cache_ttl > Duration::from_secs(60) {
            p.push(format!(
                "wechat_callback.cache_ttl = {:?}：最长 60 秒（更长会让其他实例撤回的信息久久仍被答出）",
                self.cache_ttl
            ));
        }
        p.extend(menu_problems(&self.menu, categories));
        p
    }
}

/// WeChat's menu limits and our action rules; each problem names the button.
pub fn menu_problems(menu: &[MenuButton], categories: &[String]) -> Vec<String> {
    let mut p = Vec::new();
    if menu.len() > MAX_TOP_BUTTONS {
        p.push(format!(
            "菜单：一级按钮最多 {MAX_TOP_BUTTONS} 个，现有 {} 个（{}）",
            menu.len(),
            menu.iter()
                .map(|b| b.name.as_str())
                .collect::<Vec<_>>()
                .join("、")
        ));
    }
    let mut keys = std::collections::HashSet::new();
    for b in menu {
        check_button(b, true, categories, &mut keys, &mut p);
        if b.sub_button.len() > MAX_SUB_BUTTONS {
            p.push(format!(
                "菜单按钮“{}”：子按钮最多 {MAX_SUB_BUTTONS} 个，现有 {} 个",
                b.name,
                b.sub_button.len()
            ));
        }
        for s in &b.sub_button {
            if !s.sub_button.is_empty() {
                p.push(format!("菜单按钮“{}”：菜单只有两级", s.name));
            }
            check_button(s, false, categories, &mut keys, &mut p);
        }
    }
    p
}

fn check_button(
    b: &MenuButton,
    top: bool,
    categories: &[String],
    keys: &mut std::collections::HashSet<String>,
    p: &mut Vec<String>,
) {
    let who = format!("菜单按钮“{}”", b.name);
    let max = if top {
        MAX_TOP_NAME_BYTES
    } else {
        MAX_SUB_NAME_BYTES
    };
    if b.name.is_empty() {
        p.push("菜单按钮：name 不能为空".into());
    } else if b.name.len() > max {
        p.push(format!(
            "{who}：名称 {} 字节，{}按钮最多 {max} 字节（一个汉字 3 字节）",
            b.name.len(),
            if top { "一级" } else { "子" }
        ));
    }
    if top && !b.sub_button.is_empty() {
        if b.kind.is_some() || b.key.is_some() || b.url.is_some() || b.action.is_some() {
            p.push(format!("{who}：有子按钮的按钮不能再设 type/key/url/action"));
        }
        return;
    }
    let Some(kind) = b.effective_type() else {
        p.push(format!("{who}：需要 key（点击）或 url（网页）"));
        return;
    };
    if let Some(k) = &b.key {
        if k.is_empty() || k.len() > MAX_KEY_BYTES {
            p.push(format!("{who}：key 应为 1 到 {MAX_KEY_BYTES} 字节"));
        }
        if !keys.insert(k.clone()) {
            p.push(format!("{who}：key {k:?} 与其他按钮重复"));
        }
    }
    if let Some(u) = &b.url {
        if u.len() > MAX_URL_BYTES || !(u.starts_with("http://") || u.starts_with("https://")) {
            p.push(format!(
                "{who}：url 应以 http(s):// 开头且不超过 {MAX_URL_BYTES} 字节"
            ));
        }
    }
    match kind {
        "view" if b.url.is_none() => p.push(format!("{who}：view 按钮需要 url")),
        "view" => {}
        "click" | "scancode_push" | "scancode_waitmsg" | "pic_sysphoto" | "pic_photo_or_album"
        | "pic_weixin" | "location_select"
            if b.key.is_none() =>
        {
            p.push(format!("{who}：{kind} 按钮需要 key"))
        }
        "click" | "scancode_push" | "scancode_waitmsg" | "pic_sysphoto" | "pic_photo_or_album"
        | "pic_weixin" | "location_select" => {}
        other => p.push(format!("{who}：不支持的按钮类型 {other:?}")),
    }
    match b.action.as_deref() {
        None if kind == "click" => p.push(format!(
            "{who}：点击按钮需要 action（latest、category 或 text）"
        )),
        None => {}
        Some("latest") => {}
        Some("category") => match &b.category {
            None => p.push(format!(
                "{who}：action = \"category\" 需要 category（分类代码）"
            )),
            Some(c) if !categories.iter().any(|x| x == c) => p.push(format!(
                "{who}：category = {c:?} 不是 [[categories]] 中的分类代码"
            )),
            Some(_) => {}
        },
        Some("text") if b.text.as_deref().is_none_or(str::is_empty) => {
            p.push(format!("{who}：action = \"text\" 需要 text"))
        }
        Some("text") => {}
        Some(other) => p.push(format!(
            "{who}：action = {other:?}：可选 latest、category、text"
        )),
    }
    if b.count.is_some_and(|c| c == 0 || c > 20) {
        p.push(format!("{who}：count 应在 1 到 20 之间"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn click(name: &str, key: &str) -> MenuButton {
        MenuButton {
            name: name.into(),
            key: Some(key.into()),
            action: Some("latest".into()),
            ..Default::default()
        }
    }

    #[test]
    fn menu_limits_name_the_button() {
        let menu = vec![
            click("一", "A"),
            click("二", "B"),
            click("三", "C"),
            click("四", "D"),
        ];
        let p = menu_problems(&menu, &[]);
        assert!(p[0].contains("最多 3 个") && p[0].contains("四"), "{p:?}");
        let long = vec![click("最新政府信息公开", "A")];
        let p = menu_problems(&long, &[]);
        assert!(
            p[0].contains("最新政府信息公开") && p[0].contains("24 字节"),
            "{p:?}"
        );
        let group = vec![MenuButton {
            name: "查询".into(),
            sub_button: (0..6)
                .map(|i| click(&format!("子{i}"), &format!("K{i}")))
                .collect(),
            ..Default::default()
        }];
        let p = menu_problems(&group, &[]);
        assert!(
            p.iter()
                .any(|x| x.contains("“查询”") && x.contains("子按钮最多 5 个")),
            "{p:?}"
        );
        let dup = vec![click("一", "A"), click("二", "A")];
        assert!(menu_problems(&dup, &[])[0].contains("重复"));
        let bad_cat = vec![MenuButton {
            category: Some("nope".into()),
            action: Some("category".into()),
            ..click("分类", "CAT")
        }];
        assert!(menu_problems(&bad_cat, &["shjz".into()])[0].contains("nope"));
    }

    #[test]
    fn menu_json_has_the_documented_shape() {
        let s = WechatCallbackSettings {
            menu: vec![
                click("最新公开", "LATEST"),
                MenuButton {
                    name: "查询".into(),
                    sub_button: vec![MenuButton {
                        name: "政务网站".into(),
                        url: Some("https://www.example.gov.cn/".into()),
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let v = s.menu_json();
        assert_eq!(v["button"][0]["type"], "click");
        assert_eq!(v["button"][0]["key"], "LATEST");
        assert_eq!(v["button"][1]["sub_button"][0]["type"], "view");
        assert!(v["button"][1].get("type").is_none());
        assert_eq!(
            s.click("LATEST"),
            Some(ClickAction::Latest {
                heading: "最新公开".into(),
                count: None
            })
        );
        assert_eq!(s.click("NOPE"), None);
    }
}
