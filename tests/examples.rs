//! The bundled examples (examples/disclosures/2017): the 23 disclosures of 漳平市民政局's 2017
//! annual report all pass `parse_disclosure` against the repository's config.toml taxonomy.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono::Datelike;
use gongkai::config::Category;
use gongkai::disclosure::{content_hash, parse_disclosure, Disclosure, ValidationContext};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `[[categories]]` of the repository's config.toml, read directly.
fn categories() -> Vec<Category> {
    #[derive(serde::Deserialize)]
    struct Taxonomy {
        categories: Vec<Category>,
    }
    let text = std::fs::read_to_string(repo().join("config.toml")).expect("read config.toml");
    let t: Taxonomy = toml::from_str(&text).expect("config.toml categories");
    t.categories
}

fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

fn load(path: &Path, cats: &[Category], channels: &[String]) -> Disclosure {
    let ctx = ValidationContext {
        categories: cats,
        channels,
    };
    let raw = std::fs::read(path).unwrap();
    parse_disclosure(&raw, &ctx).unwrap_or_else(|e| panic!("{} is not valid:\n{e}", path.display()))
}

#[test]
fn the_23_disclosures_of_2017_are_valid() {
    let cats = categories();
    let channels = vec!["gov_site".to_string()];
    let files = json_files(&repo().join("examples/disclosures/2017"));
    assert_eq!(files.len(), 23, "{files:?}");

    let all: Vec<Disclosure> = files.iter().map(|f| load(f, &cats, &channels)).collect();

    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for d in &all {
        *counts.entry(d.category.as_str()).or_default() += 1;
    }
    let expected: BTreeMap<&str, usize> = [
        ("jgzn", 7),
        ("zcfg", 4),
        ("ghjh", 2),
        ("zdxm", 2),
        ("mzfp", 6),
        ("kjwt", 2),
    ]
    .into_iter()
    .collect();
    assert_eq!(counts, expected);

    let mut ids = BTreeSet::new();
    let mut index_nos = BTreeSet::new();
    for (f, d) in files.iter().zip(&all) {
        let name = f.display();
        let publish = d
            .publish_date
            .unwrap_or_else(|| panic!("{name}: no publish_date"));
        assert_eq!(publish.year(), 2017, "{name}");
        assert_eq!(d.formed_date.year(), 2017, "{name}");
        assert!(d.formed_date <= publish, "{name}");
        assert_eq!(d.revision, 1, "{name}");
        assert_eq!(d.publisher, "漳平市民政局", "{name}");
        let short = d
            .short_title
            .as_deref()
            .unwrap_or_else(|| panic!("{name}: no short_title"));
        assert!(short.chars().count() <= 32, "{name}");
        // 先审后发: three steps, all between the formed and the publish date.
        let roles: Vec<&str> = d.review.steps.iter().map(|s| s.role.as_str()).collect();
        assert_eq!(roles, ["初审", "复审", "终审"], "{name}");
        for s in &d.review.steps {
            let day = s.at.date_naive();
            assert!(
                d.formed_date <= day && day <= publish,
                "{name}: {} at {}",
                s.role,
                s.at
            );
        }
        assert!(ids.insert(d.disclosure_id.clone()), "{name}: duplicate id");
        let index_no = d
            .index_no
            .clone()
            .unwrap_or_else(|| panic!("{name}: no index_no"));
        assert!(index_no.starts_with("003781234/2017-"), "{name}");
        assert!(index_nos.insert(index_no), "{name}: duplicate index_no");
    }

    let normative = all
        .iter()
        .filter(|d| d.doc_kind.as_deref() == Some("行政规范性文件"))
        .count();
    assert_eq!(normative, 2);
    assert!(all.iter().any(|d| d.body_markdown.is_some()));
    assert!(all.iter().any(|d| d.body_markdown.is_none()));
}

#[test]
fn the_correction_is_revision_2_of_an_example() {
    let cats = categories();
    let channels = vec!["gov_site".to_string()];
    let r2 = load(
        &repo().join("examples/corrections/zpmzj-2017-00009-r2.json"),
        &cats,
        &channels,
    );
    assert_eq!(r2.revision, 2);
    let r1 = json_files(&repo().join("examples/disclosures/2017"))
        .iter()
        .map(|f| load(f, &cats, &channels))
        .find(|d| d.disclosure_id == r2.disclosure_id)
        .expect("revision 1 is among the examples");
    assert_eq!(r1.revision, 1);
    assert_eq!(r1.index_no, r2.index_no);
    assert_ne!(content_hash(&r1), content_hash(&r2));
    assert!(r2.formed_date > r1.publish_date.unwrap());
}
