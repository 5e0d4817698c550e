//! `gongkai menu push | show`: the custom menu from `[wechat_callback.menu]`, checked
//! against WeChat's limits before anything is sent (each problem names the button), created
//! with `menu/create`; `show` prints what WeChat has (`menu/get`). Uses the token shared
//! through the store, like the publishing channel.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

use crate::channel::wechat::Wechat;
use crate::config::{ChannelSpec, Problems, Settings};

async fn client(config: &Path, department: &str) -> anyhow::Result<(Settings, Wechat)> {
    let settings = Settings::load(config)?.for_department(department)?;
    let name = settings.wechat_callback.channel.clone();
    let Some(ChannelSpec::Wechat(cfg)) = settings.channels.channels.get(&name) else {
        anyhow::bail!("[wechat_callback] channel = {name:?}：没有这个微信渠道（channels/{name}.toml，kind = \"wechat\"）");
    };
    let store = crate::store::connect(&settings.resolved_database_url())
        .await
        .context("打开数据库（access_token 保存在台账中）")?;
    let w = Wechat::new(&name, cfg.clone(), Some(Arc::clone(&store)))?;
    Ok((settings, w))
}

/// Checks the menu (WeChat's limits) and creates it (the `default` department's account).
pub async fn push(config: &Path) -> anyhow::Result<()> {
    push_for(config, crate::store::DEFAULT_DEPARTMENT).await
}

/// `push` for a department's account (`--department`).
pub async fn push_for(config: &Path, department: &str) -> anyhow::Result<()> {
    let (settings, w) = client(config, department).await?;
    let cb = &settings.wechat_callback;
    let codes: Vec<String> = settings.categories.iter().map(|c| c.code.clone()).collect();
    let problems = super::config::menu_problems(&cb.menu, &codes);
    if !problems.is_empty() {
        return Err(anyhow::Error::new(Problems(problems)));
    }
    if cb.menu.is_empty() {
        anyhow::bail!("[wechat_callback.menu] 为空：没有可推送的菜单");
    }
    w.post_api("/cgi-bin/menu/create", &cb.menu_json())
        .await
        .map_err(|e| anyhow::anyhow!("menu/create 失败：{e}"))?;
    println!(
        "菜单已创建（{} 个一级按钮）。用户重新进入公众号后（最长约 5 分钟）可见。",
        cb.menu.len()
    );
    Ok(())
}

/// Prints the menu WeChat has (the `default` department's account).
pub async fn show(config: &Path) -> anyhow::Result<()> {
    show_for(config, crate::store::DEFAULT_DEPARTMENT).await
}

/// `show` for a department's account (`--department`).
pub async fn show_for(config: &Path, department: &str) -> anyhow::Result<()> {
    let (_, w) = client(config, department).await?;
    let v = w
        .get_api("/cgi-bin/menu/get")
        .await
        .map_err(|e| anyhow::anyhow!("menu/get 失败：{e}"))?;
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}
