//! Paging styles shared by the RMM collectors and the declarative RMM specs:
//! none, page number, offset, cursor, next URL and after-id. Records are located by a
//! JSON pointer (RFC 6901; `""` is the whole page).
//!
//! Lists end on an empty page (or a missing next link / cursor), never on a
//! short page: servers cap page sizes below what a client asks for. The one
//! exception is [`ODataSkipPager`], for an API that documents `$top` as
//! honoured up to a maximum and announces no next page.

use reqwest::Url;
use serde_json::Value;

/// `url` with query parameter `key` set to `value` (replacing any earlier one).
///
/// # Errors
/// When `url` is not a URL.
pub fn with_param(url: &str, key: &str, value: &str) -> Result<String, String> {
    let mut u = Url::parse(url).map_err(|e| format!("bad page URL: {e}"))?;
    let kept: Vec<(String, String)> = u
        .query_pairs()
        .filter(|(k, _)| k != key)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    u.query_pairs_mut()
        .clear()
        .extend_pairs(kept)
        .append_pair(key, value);
    Ok(u.to_string())
}

/// The value of query parameter `key` in `url`.
pub fn param(url: &str, key: &str) -> Option<String> {
    Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// The record array at `pointer` in `page`.
///
/// # Errors
/// When there is no array there.
pub fn records_at<'v>(page: &'v Value, pointer: &str) -> Result<&'v Vec<Value>, String> {
    page.pointer(pointer)
        .and_then(Value::as_array)
        .ok_or_else(|| {
            if pointer.is_empty() {
                "expected a JSON array of records".to_owned()
            } else {
                format!("page has no record array at `{pointer}`")
            }
        })
}

/// A scalar as query-string text (`"abc"`, `42`).
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// How a list pages, as data (the declarative specs deserialize into this).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Paging {
    /// One page holds everything.
    None,
    /// `?<param>=N`, counting from `first`.
    PageNumber {
        /// Query parameter carrying the page number.
        param: String,
        /// Number of the first page (0 or 1).
        first: u64,
    },
    /// `?<param>=<offset>`, counting records from `first` (`$skip`/`$top`,
    /// `offset`/`limit`): the next offset is this page's plus the records
    /// it held, so a server that serves fewer than asked loses nothing.
    Offset {
        /// Query parameter carrying the offset.
        param: String,
        /// Offset of the first page (usually 0).
        first: u64,
    },
    /// The next page is `?<param>=<value at cursor pointer>`.
    Cursor {
        /// Query parameter carrying the cursor.
        param: String,
        /// Where the cursor is on a page.
        pointer: String,
    },
    /// The next page's full URL is on the page.
    NextUrl {
        /// Where the URL is on a page.
        pointer: String,
    },
    /// `?<param>=<id of the last record>`.
    AfterId {
        /// Query parameter carrying the last id.
        param: String,
        /// Where the id is within a record.
        id: String,
    },
}

/// A [`Pager`] for any [`Paging`] style, with records at a JSON pointer.
pub struct GenericPager {
    /// The paging style.
    pub paging: Paging,
    /// Where the record array is on a page.
    pub records: String,
    /// The first record of the page before, for the styles whose next URL
    /// does not come from the page (page number, offset).
    previous_first: Option<Value>,
}

impl GenericPager {
    /// A pager of `paging` style, with records at JSON pointer `records`.
    pub fn new(paging: Paging, records: impl Into<String>) -> Self {
        GenericPager {
            paging,
            records: records.into(),
            previous_first: None,
        }
    }
}

/// An error when `items` begins as the page before did (`previous`, then
/// updated): a server that ignores the page or offset parameter serves its
/// first page again and again, each time under a new URL.
fn check_progress(previous: &mut Option<Value>, key: &str, items: &[Value]) -> Result<(), String> {
    let first = items.first().cloned();
    if first.is_some() && first == *previous {
        return Err(format!(
            "a page begins with the same record as the page before: the server does not page by `{key}`"
        ));
    }
    *previous = first;
    Ok(())
}

/// The number in query parameter `key` of `url`, else `first`.
fn counter(url: &str, key: &str, first: u64) -> u64 {
    param(url, key)
        .and_then(|p| p.parse::<u64>().ok())
        .unwrap_or(first)
}

impl Pager for GenericPager {
    fn read(&mut self, url: &str, page: &Value) -> Result<PageInfo, String> {
        let items = records_at(page, &self.records)?;
        let next = if items.is_empty() {
            None
        } else {
            match &self.paging {
                Paging::None => None,
                Paging::PageNumber { param: key, first } => {
                    check_progress(&mut self.previous_first, key, items)?;
                    let next = counter(url, key, *first) + 1;
                    Some(with_param(url, key, &next.to_string())?)
                }
                Paging::Offset { param: key, first } => {
                    check_progress(&mut self.previous_first, key, items)?;
                    let next = counter(url, key, *first) + items.len() as u64;
                    Some(with_param(url, key, &next.to_string())?)
                }
                Paging::Cursor {
                    param: key,
                    pointer,
                } => match page.pointer(pointer) {
                    None | Some(Value::Null) => None,
                    Some(v) => match scalar_text(v) {
                        Some(c) => Some(with_param(url, key, &c)?),
                        None if v.as_str() == Some("") => None,
                        None => return Err(format!("cursor at `{pointer}` is not a scalar")),
                    },
                },
                Paging::NextUrl { pointer } => match page.pointer(pointer) {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) if s.is_empty() => None,
                    Some(Value::String(s)) => Some(same_origin(url, s)?),
                    Some(_) => return Err(format!("next page link at `{pointer}` is not text")),
                },
                Paging::AfterId { param: key, id } => {
                    let last = items
                        .last()
                        .and_then(|r| r.pointer(id))
                        .and_then(scalar_text)
                        .ok_or_else(|| format!("the last record has no id at `{id}`"))?;
                    Some(with_param(url, key, &last)?)
                }
            }
        };
        Ok(PageInfo {
            records: items.len(),
            next,
        })
    }
}

/// `next` resolved against `current`, refused when it leaves the origin (the
/// request would carry the credentials to another host).
///
/// # Errors
/// When `next` is not a URL or points to another scheme, host or port.
pub fn same_origin(current: &str, next: &str) -> Result<String, String> {
    let base = Url::parse(current).map_err(|e| format!("bad page URL: {e}"))?;
    let resolved = base
        .join(next)
        .map_err(|e| format!("next page link is not a URL: {e}"))?;
    if resolved.origin() != base.origin() {
        return Err(format!(
            "next page link points to another host ({}), refused",
            resolved.origin().ascii_serialization()
        ));
    }
    Ok(resolved.to_string())
}

/// How a dataset pages, and where a page's records are.
pub trait Pager: Send {
    /// The records on `page` and the URL of the next page, if any.
    ///
    /// # Errors
    /// When the page does not have the expected shape.
    fn read(&mut self, url: &str, page: &Value) -> Result<PageInfo, String>;

    /// Whether an error `status` for `url`, asked after at least one page,
    /// is the service's documented way of saying the list has ended (so the
    /// dataset is complete), rather than a failure. None by default.
    fn ends_list(&self, _url: &str, _status: u16) -> bool {
        false
    }
}

/// What a pager found on one page.
#[derive(Debug)]
pub struct PageInfo {
    /// Records on this page.
    pub records: usize,
    /// The next page's URL.
    pub next: Option<String>,
}

/// Microsoft Graph and Defender: records in `value`, next page at
/// `@odata.nextLink`, followed exactly as given.
pub struct ODataPager;

impl Pager for ODataPager {
    fn read(&mut self, _url: &str, page: &Value) -> Result<PageInfo, String> {
        let records = page
            .get("value")
            .and_then(Value::as_array)
            .ok_or("page has no `value` array")?
            .len();
        let next = match page.get("@odata.nextLink") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err("`@odata.nextLink` is not a string".into()),
        };
        Ok(PageInfo { records, next })
    }
}

/// `url` with its OData `$skip` set to `skip`, written `$skip` as Microsoft's
/// examples write it; every other parameter kept as it was written.
fn with_skip(url: &str, skip: usize) -> String {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let mut parts: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| {
            let key = p.split('=').next().unwrap_or_default();
            !(key == "$skip" || key.eq_ignore_ascii_case("%24skip"))
        })
        .map(str::to_owned)
        .collect();
    parts.push(format!("$skip={skip}"));
    format!("{path}?{}", parts.join("&"))
}

/// An OData `$top` / `$skip` list whose server may or may not announce the
/// next page (the Defender for Endpoint machine list documents `$top` up to
/// 10,000 with `$skip`, and no `@odata.nextLink`).
///
/// Records are in `value`. An `@odata.nextLink` is followed exactly as given,
/// and once a server has given one it drives the paging: its last page has
/// none. Without one, a page holding as many records as the URL's `$top`
/// asked for may not be the last: the next is the same URL with its `$skip`
/// advanced by the page's records. A page with fewer records than
/// `$top` (or none) ends the list. A record `id` seen on an earlier page is
/// an error (the server did not honour `$skip`, or records were added while
/// the list was read), so the dataset ends partial instead of holding
/// duplicates; so is a page without `$top` in its URL and without a next
/// link, whose fullness cannot be told.
#[derive(Debug, Default)]
pub struct ODataSkipPager {
    /// Whether the server has announced a next page by link.
    linked: bool,
    /// Record ids seen so far.
    ids: std::collections::HashSet<String>,
}

impl Pager for ODataSkipPager {
    fn read(&mut self, url: &str, page: &Value) -> Result<PageInfo, String> {
        let items = page
            .get("value")
            .and_then(Value::as_array)
            .ok_or("page has no `value` array")?;
        for id in items
            .iter()
            .filter_map(|r| r.get("id"))
            .filter_map(scalar_text)
        {
            if !self.ids.insert(id.clone()) {
                return Err(format!(
                    "record {id} was already listed on an earlier page (the server did not honour $skip, or the list changed while it was read)"
                ));
            }
        }
        let link = match page.get("@odata.nextLink") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err("`@odata.nextLink` is not a string".into()),
        };
        let next = match link {
            Some(link) => {
                self.linked = true;
                Some(link)
            }
            None if self.linked || items.is_empty() => None,
            None => {
                let top = param(url, "$top")
                    .and_then(|t| t.parse::<usize>().ok())
                    .ok_or("the page URL has no $top, so a page without a next link cannot be told from the last one")?;
                let skip = param(url, "$skip")
                    .and_then(|s| s.parse::<usize>().ok())
                    .unwrap_or(0);
                (items.len() >= top).then(|| with_skip(url, skip + items.len()))
            }
        };
        Ok(PageInfo {
            records: items.len(),
            next,
        })
    }

    /// Defender's List machines API answers 404 when it has no machines to
    /// list, so a `$skip` just past the end of a list that filled its last
    /// page may be answered 404 instead of with an empty page.
    fn ends_list(&self, url: &str, status: u16) -> bool {
        status == 404
            && !self.linked
            && param(url, "$skip")
                .and_then(|s| s.parse::<usize>().ok())
                .is_some_and(|skip| skip > 0)
    }
}

/// A single JSON object (e.g. a policy): one record, no paging.
pub struct SingleObject;

impl Pager for SingleObject {
    fn read(&mut self, _url: &str, page: &Value) -> Result<PageInfo, String> {
        if page.is_object() {
            Ok(PageInfo {
                records: 1,
                next: None,
            })
        } else {
            Err("expected a JSON object".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odata_pager_reads_value_and_next_link() {
        let page = serde_json::json!({"value": [1, 2], "@odata.nextLink": "https://x/next"});
        let info = ODataPager.read("u", &page).expect("valid page");
        assert_eq!(info.records, 2);
        assert_eq!(info.next.as_deref(), Some("https://x/next"));
        assert!(ODataPager.read("u", &serde_json::json!({"x": 1})).is_err());
    }
    use serde_json::json;

    fn machines(ids: std::ops::Range<usize>) -> Value {
        json!({"value": ids.map(|i| json!({"id": format!("m{i}")})).collect::<Vec<_>>()})
    }

    #[test]
    fn a_full_page_without_a_next_link_asks_the_next_with_skip() {
        let mut p = ODataSkipPager::default();
        let first = "https://h/api/machines?$top=3";
        let info = p.read(first, &machines(0..3)).expect("page");
        assert_eq!(info.records, 3);
        let second = info.next.expect("a full page is not the last");
        assert_eq!(second, "https://h/api/machines?$top=3&$skip=3");
        let third = p
            .read(&second, &machines(3..6))
            .expect("page")
            .next
            .expect("full again");
        assert_eq!(third, "https://h/api/machines?$top=3&$skip=6");
        // A short page is the documented end; so is an empty one.
        assert!(p
            .read(&third, &machines(6..8))
            .expect("page")
            .next
            .is_none());
        let mut p = ODataSkipPager::default();
        let next = p.read(first, &machines(0..3)).expect("page").next;
        let end = p.read(&next.expect("next"), &machines(0..0)).expect("page");
        assert_eq!((end.records, end.next), (0, None));
    }

    #[test]
    fn a_next_link_is_followed_as_given_and_then_drives_the_paging() {
        let mut p = ODataSkipPager::default();
        let mut page = machines(0..3);
        page["@odata.nextLink"] = json!("https://h/api/machines?$skiptoken=abc");
        let info = p
            .read("https://h/api/machines?$top=3", &page)
            .expect("page");
        assert_eq!(
            info.next.as_deref(),
            Some("https://h/api/machines?$skiptoken=abc")
        );
        // The server pages by link: its page without one is the last, full or not.
        let info = p
            .read("https://h/api/machines?$skiptoken=abc", &machines(3..6))
            .expect("page");
        assert!(info.next.is_none());
    }

    #[test]
    fn a_repeated_record_or_an_unknown_page_size_is_an_error_not_an_end() {
        let mut p = ODataSkipPager::default();
        let next = p
            .read("https://h/api/machines?$top=3", &machines(0..3))
            .expect("page")
            .next
            .expect("next");
        // A server that ignores $skip serves the first page again.
        let err = p.read(&next, &machines(0..3)).expect_err("repeat");
        assert!(err.contains("m0") && err.contains("$skip"), "{err}");
        let err = ODataSkipPager::default()
            .read("https://h/api/machines", &machines(0..3))
            .expect_err("no $top");
        assert!(err.contains("$top"), "{err}");
        assert!(ODataSkipPager::default()
            .read("https://h/api/machines?$top=3", &json!({"x": []}))
            .is_err());
        // `$skip` already in the URL is replaced, other parameters kept as written.
        assert_eq!(
            with_skip("https://h/m?$top=2&$skip=4&$filter=a%20eq%201", 6),
            "https://h/m?$top=2&$filter=a%20eq%201&$skip=6"
        );
    }

    fn pager(paging: Paging, records: &str) -> GenericPager {
        GenericPager::new(paging, records)
    }

    #[test]
    fn page_numbers_count_up_until_an_empty_page() {
        let mut p = pager(
            Paging::PageNumber {
                param: "page".into(),
                first: 0,
            },
            "/devices",
        );
        let info = p
            .read("http://h/d?max=2", &json!({"devices": [1, 2]}))
            .expect("page");
        assert_eq!(info.next.as_deref(), Some("http://h/d?max=2&page=1"));
        let info = p
            .read("http://h/d?max=2&page=1", &json!({"devices": [3]}))
            .expect("page");
        assert_eq!(info.next.as_deref(), Some("http://h/d?max=2&page=2"));
        let info = p
            .read("http://h/d?max=2&page=2", &json!({"devices": []}))
            .expect("page");
        assert!(info.next.is_none());
        assert!(p.read("http://h/d", &json!({"x": []})).is_err());
    }

    #[test]
    fn offsets_advance_by_the_records_served_until_an_empty_page() {
        let mut p = pager(
            Paging::Offset {
                param: "$skip".into(),
                first: 0,
            },
            "/value",
        );
        // Asked for 5, served 3: the next page starts after the third.
        // (Parameters are written form-encoded, `$` as `%24`.)
        let info = p
            .read("http://h/d?$top=5&$skip=0", &json!({"value": [1, 2, 3]}))
            .expect("page");
        assert_eq!(info.records, 3);
        let next = info.next.expect("a next page");
        assert_eq!(next, "http://h/d?%24top=5&%24skip=3");
        let info = p.read(&next, &json!({"value": [4, 5]})).expect("page");
        let next = info.next.expect("a next page");
        assert_eq!(next, "http://h/d?%24top=5&%24skip=5");
        let info = p.read(&next, &json!({"value": []})).expect("page");
        assert!(info.next.is_none());
        // Without the parameter in the URL, counting starts at `first`.
        let mut p = pager(
            Paging::Offset {
                param: "start".into(),
                first: 1,
            },
            "",
        );
        let info = p.read("http://h/d", &json!([1, 2])).expect("page");
        assert_eq!(info.next.as_deref(), Some("http://h/d?start=3"));
    }

    #[test]
    fn a_server_that_ignores_the_page_or_offset_is_an_error_not_a_loop() {
        for paging in [
            Paging::Offset {
                param: "offset".into(),
                first: 0,
            },
            Paging::PageNumber {
                param: "page".into(),
                first: 1,
            },
        ] {
            let mut p = pager(paging, "/items");
            let page = json!({"items": [{"id": 1}, {"id": 2}]});
            let next = p.read("http://h/d", &page).expect("first page").next;
            let next = next.expect("a next page");
            let err = p.read(&next, &page).expect_err("the same page again");
            assert!(err.contains("same record") && err.contains('`'), "{err}");
        }
    }

    #[test]
    fn next_urls_stay_on_the_origin() {
        let mut p = pager(
            Paging::NextUrl {
                pointer: "/pageDetails/nextPageUrl".into(),
            },
            "/devices",
        );
        let page = json!({"pageDetails": {"nextPageUrl": "http://h/d?page=2"}, "devices": [1]});
        assert_eq!(
            p.read("http://h/d", &page).expect("page").next.as_deref(),
            Some("http://h/d?page=2")
        );
        let evil = json!({"pageDetails": {"nextPageUrl": "http://evil/d"}, "devices": [1]});
        assert!(p.read("http://h/d", &evil).is_err());
        let end = json!({"pageDetails": {"nextPageUrl": null}, "devices": [1]});
        assert!(p.read("http://h/d", &end).expect("page").next.is_none());
    }

    #[test]
    fn cursor_and_after_id() {
        let mut c = pager(
            Paging::Cursor {
                param: "cursor".into(),
                pointer: "/next".into(),
            },
            "/items",
        );
        let info = c
            .read("http://h/x", &json!({"next": "abc", "items": [1]}))
            .expect("page");
        assert_eq!(info.next.as_deref(), Some("http://h/x?cursor=abc"));
        assert!(c
            .read("http://h/x", &json!({"next": null, "items": [1]}))
            .expect("page")
            .next
            .is_none());
        let mut a = pager(
            Paging::AfterId {
                param: "after".into(),
                id: "/id".into(),
            },
            "",
        );
        let info = a
            .read("http://h/x", &json!([{"id": 4}, {"id": 9}]))
            .expect("page");
        assert_eq!(info.next.as_deref(), Some("http://h/x?after=9"));
        assert!(a.read("http://h/x", &json!([{"name": 1}])).is_err());
    }
}
