//! `GET /v2/<name>/tags/list` and `GET /v2/_catalog`, ordering and pagination.

use crate::util::*;

/// Tags `names` onto one image in `repo`.
async fn tag_all(reg: &Reg, repo: &str, names: &[&str]) {
    let img = reg.push_image(repo, names[0]).await;
    for t in &names[1..] {
        reg.push_manifest(repo, t, OCI_MANIFEST, &img.manifest)
            .await;
    }
}

/// The target of a `Link: <...>; rel="next"` header.
fn next_link(r: &Resp) -> Option<String> {
    let v = r.header("link")?;
    assert!(v.ends_with("; rel=\"next\""), "link header {v}");
    let start = v.find('<').expect("<") + 1;
    let end = v.find('>').expect(">");
    Some(v[start..end].to_string())
}

fn sorted(v: &[&str]) -> Vec<String> {
    let mut s: Vec<String> = v.iter().map(|x| x.to_string()).collect();
    s.sort();
    s
}

#[tokio::test]
async fn tags_list_is_complete_and_sorted() {
    let reg = Reg::start();
    let repo = repo("tags");
    let names = [
        "zeta", "alpha", "Beta", "1.0", "latest", "alpha-2", "alpha_1",
    ];
    tag_all(&reg, &repo, &names).await;
    let r = reg.get(&format!("/v2/{repo}/tags/list")).await;
    r.expect_status(200);
    assert!(r.h("content-type").starts_with("application/json"));
    assert!(r.header("link").is_none());
    let v = r.json();
    assert_eq!(v["name"], repo.as_str());
    assert_eq!(strings(&v["tags"]), sorted(&names));
}

#[tokio::test]
async fn tags_list_paginates_with_n_and_link() {
    let reg = Reg::start();
    let repo = repo("tagpages");
    tag_all(&reg, &repo, &["e", "d", "c", "b", "a"]).await;

    let r = reg.get(&format!("/v2/{repo}/tags/list?n=2")).await;
    r.expect_status(200);
    assert_eq!(strings(&r.json()["tags"]), vec!["a", "b"]);
    assert_eq!(
        r.h("link"),
        format!("</v2/{repo}/tags/list?last=b&n=2>; rel=\"next\"")
    );

    let next = next_link(&r).expect("next");
    let r = reg.get(&next).await;
    r.expect_status(200);
    assert_eq!(strings(&r.json()["tags"]), vec!["c", "d"]);
    assert_eq!(
        r.h("link"),
        format!("</v2/{repo}/tags/list?last=d&n=2>; rel=\"next\"")
    );

    let next = next_link(&r).expect("next");
    let r = reg.get(&next).await;
    r.expect_status(200);
    assert_eq!(strings(&r.json()["tags"]), vec!["e"]);
    assert!(r.header("link").is_none(), "last page has no Link");
}

#[tokio::test]
async fn tags_list_n_at_or_above_count_has_no_link() {
    let reg = Reg::start();
    let repo = repo("tagsall");
    tag_all(&reg, &repo, &["x", "y", "z"]).await;
    for n in [3, 4, 1000] {
        let r = reg.get(&format!("/v2/{repo}/tags/list?n={n}")).await;
        r.expect_status(200);
        assert_eq!(strings(&r.json()["tags"]), vec!["x", "y", "z"]);
        assert!(r.header("link").is_none(), "n={n}: no more tags, no Link");
    }
}

#[tokio::test]
async fn tags_list_last_starts_after_the_given_tag() {
    let reg = Reg::start();
    let repo = repo("taglast");
    tag_all(&reg, &repo, &["a", "b", "c", "d", "e"]).await;
    let cases: [(&str, Vec<&str>); 5] = [
        ("last=b", vec!["c", "d", "e"]),
        ("last=bb", vec!["c", "d", "e"]),
        ("last=e", vec![]),
        ("last=0", vec!["a", "b", "c", "d", "e"]),
        ("last=b&n=1", vec!["c"]),
    ];
    for (q, want) in cases {
        let r = reg.get(&format!("/v2/{repo}/tags/list?{q}")).await;
        r.expect_status(200);
        assert_eq!(strings(&r.json()["tags"]), want, "?{q}");
    }
    let r = reg.get(&format!("/v2/{repo}/tags/list?last=b&n=1")).await;
    assert_eq!(
        r.h("link"),
        format!("</v2/{repo}/tags/list?last=c&n=1>; rel=\"next\"")
    );
}

#[tokio::test]
async fn tags_list_of_missing_repository_is_name_unknown() {
    let reg = Reg::start();
    reg.get(&format!("/v2/{}/tags/list", repo("missing")))
        .await
        .expect_error(404, "NAME_UNKNOWN");
}

#[tokio::test]
async fn tags_list_is_scoped_to_its_repository() {
    let reg = Reg::start();
    let a = repo("scope-a");
    let b = format!("{a}/sub");
    tag_all(&reg, &a, &["in-a"]).await;
    tag_all(&reg, &b, &["in-b"]).await;
    assert_eq!(reg.tags(&a).await, vec!["in-a"]);
    assert_eq!(reg.tags(&b).await, vec!["in-b"]);
}

#[tokio::test]
async fn catalog_of_empty_registry_is_empty() {
    let reg = Reg::start();
    let r = reg.get("/v2/_catalog").await;
    r.expect_status(200);
    assert_eq!(strings(&r.json()["repositories"]), Vec::<String>::new());
    assert!(r.header("link").is_none());
}

#[tokio::test]
async fn catalog_lists_repositories_sorted() {
    let reg = Reg::start();
    let names = ["zeta", "alpha/one", "alpha", "beta/x/y", "alpha-b"];
    for n in names {
        reg.push_image(n, "v1").await;
    }
    let r = reg.get("/v2/_catalog").await;
    r.expect_status(200);
    assert!(r.h("content-type").starts_with("application/json"));
    let full_names: Vec<String> = names.iter().map(|n| full(n)).collect();
    let full_refs: Vec<&str> = full_names.iter().map(String::as_str).collect();
    assert_eq!(strings(&r.json()["repositories"]), sorted(&full_refs));
}

#[tokio::test]
async fn catalog_paginates_with_n_last_and_link() {
    let reg = Reg::start();
    for n in ["p/r5", "p/r4", "p/r3", "p/r2", "p/r1"] {
        reg.push_image(n, "v1").await;
    }
    let r = reg.get("/v2/_catalog?n=2").await;
    r.expect_status(200);
    assert_eq!(strings(&r.json()["repositories"]), vec!["p/r1", "p/r2"]);
    assert_eq!(r.h("link"), "</v2/_catalog?last=p%2Fr2&n=2>; rel=\"next\"");
    let r = reg.get(&next_link(&r).expect("next")).await;
    assert_eq!(strings(&r.json()["repositories"]), vec!["p/r3", "p/r4"]);
    assert_eq!(r.h("link"), "</v2/_catalog?last=p%2Fr4&n=2>; rel=\"next\"");
    let r = reg.get(&next_link(&r).expect("next")).await;
    assert_eq!(strings(&r.json()["repositories"]), vec!["p/r5"]);
    assert!(r.header("link").is_none());

    let r = reg.get("/v2/_catalog?last=p/r3").await;
    r.expect_status(200);
    assert_eq!(strings(&r.json()["repositories"]), vec!["p/r4", "p/r5"]);
    let r = reg.get("/v2/_catalog?n=5").await;
    assert_eq!(strings(&r.json()["repositories"]).len(), 5);
    assert!(r.header("link").is_none());
}
