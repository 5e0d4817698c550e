//! The content gate over HTTP and the CLI: personal data refuses a disclosure (422, every hit
//! named and masked), an approver's recorded override lets one rule through.

use serde_json::{json, Value};

use crate::helpers::*;

const ID: &str = "350102199003077134";
const CARD: &str = "6222021234567890128";

#[tokio::test]
async fn a_list_with_an_id_number_and_a_mobile_is_refused_with_every_hit_masked() {
    let app = spawn_app().await;
    let body = format!("<p>低保对象：张三，身份证号{ID}，电话13800138000，卡号{CARD}。</p>");
    let r = app
        .post_disclosure(&disclosure_with_body("zpmzj-2017-00700", 1, &body))
        .await;
    assert_eq!(r.status(), 422);
    let text = r.text().await.unwrap();
    assert!(
        !text.contains(ID) && !text.contains("13800138000") && !text.contains(CARD),
        "{text}"
    );
    let v: Value = serde_json::from_str(&text).unwrap();
    let problems = v["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 3, "{v}");
    assert!(problems.iter().all(|p| p["path"] == "body_html"));
    let msgs: Vec<&str> = problems
        .iter()
        .map(|p| p["message"].as_str().unwrap())
        .collect();
    assert!(
        msgs[0].contains("3501**********7134") && msgs[0].contains("resident_id"),
        "{msgs:?}"
    );
    assert!(msgs[0].contains("第 16 个字符处"), "{msgs:?}");
    assert!(
        msgs[1].contains("138****8000") && msgs[1].contains("mobile"),
        "{msgs:?}"
    );
    assert!(
        msgs[2].contains("6222***********0128") && msgs[2].contains("bank_card"),
        "{msgs:?}"
    );
    assert!(app.deliveries().await.is_empty(), "nothing is stored");
}

#[tokio::test]
async fn an_approver_override_with_a_reason_lets_that_rule_through_only() {
    let app = spawn_app().await;
    let body = "<p>值班电话13800138000。</p>";
    let mut d = disclosure_with_body("zpmzj-2017-00701", 1, body);
    d["review"]["gate_overrides"] =
        json!([{"rule": "mobile", "reason": "公布的是单位值班手机，非个人信息", "by": "u007"}]);
    let r = app.post_disclosure(&d).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());

    // The override of another rule does not cover a mobile number.
    let mut d = disclosure_with_body("zpmzj-2017-00702", 1, body);
    d["review"]["gate_overrides"] =
        json!([{"rule": "bank_card", "reason": "经核实为单位对公账户", "by": "u007"}]);
    assert_eq!(app.post_disclosure(&d).await.status(), 422);

    // An override without a reason, or by someone who did not review, is itself refused.
    let mut d = disclosure_with_body("zpmzj-2017-00703", 1, body);
    d["review"]["gate_overrides"] = json!([{"rule": "mobile", "reason": "", "by": "u999"}]);
    let v: Value = app.post_disclosure(&d).await.json().await.unwrap();
    let paths: Vec<&str> = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert!(paths.contains(&"review.gate_overrides[0].reason"), "{v}");
    assert!(paths.contains(&"review.gate_overrides[0].by"), "{v}");
}

#[tokio::test]
async fn near_misses_and_the_review_hash_pass_the_gate() {
    let app = spawn_app().await;
    // Wrong check digit, a landline, a Luhn failure, a number in a link: all publishable.
    let body = "<p>文号350102199003077135，电话0597-7532402，编号6222021234567890127，<a href=\"http://www.zp.gov.cn/13800138000\">详情</a></p>";
    let r = app
        .post_disclosure(&disclosure_with_body("zpmzj-2017-00704", 1, body))
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
}

#[tokio::test]
async fn configured_words_are_refused_with_the_correct_form() {
    let app = spawn_app_with(|s| {
        s.gate.outdated_terms = vec![gongkai::config::OutdatedTerm {
            term: "救灾科".into(),
            correct: "社会救助科".into(),
        }];
        s.gate.forbidden_words = vec!["内部资料".into()];
    })
    .await;
    let mut d = disclosure("zpmzj-2017-00705", 1);
    d["title"] = json!("救灾科关于内部资料的通知");
    let v: Value = app.post_disclosure(&d).await.json().await.unwrap();
    let problems = v["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 2, "{v}");
    assert_eq!(problems[0]["path"], "title");
    assert!(problems[0]["message"]
        .as_str()
        .unwrap()
        .contains("应为“社会救助科”"));
    assert!(problems[1]["message"]
        .as_str()
        .unwrap()
        .contains("forbidden_word"));
}
