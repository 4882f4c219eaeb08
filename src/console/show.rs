//! How the console shows the API's JSON: values, statuses, times, bodies,
//! headers, and the pager over the API's cursors.

use maud::{html, Markup};
use serde_json::Value;

/// A value as text: strings bare, nothing as a dash.
pub fn text(value: &Value) -> String {
    match value {
        Value::Null => "—".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A status (an event's, an attempt's, a request's) coloured by outcome.
pub fn status(value: &Value) -> Markup {
    let shown = text(value);
    let class = match shown.as_str() {
        "SUCCESSFUL" | "accepted" | "completed" | "succeeded" => "good",
        "FAILED" | "rejected" | "cancelled" | "failed" | "discarded" => "bad",
        _ => "waiting",
    };
    html! { span class={"status " (class)} { (shown) } }
}

/// An ISO 8601 time, shortened for reading and kept whole for machines.
pub fn time(value: &Value) -> Markup {
    match value.as_str() {
        Some(iso) => {
            let short = iso.replace('T', " ");
            let short = short
                .split('.')
                .next()
                .unwrap_or(&short)
                .trim_end_matches('Z');
            html! { time datetime=(iso) { (short) } }
        }
        None => html! { "—" },
    }
}

/// A body: JSON (also JSON sent as text) pretty-printed, anything else as is.
pub fn body(value: &Value) -> Markup {
    let parsed = value
        .as_str()
        .and_then(|s| serde_json::from_str::<Value>(s).ok());
    let pretty = match (value, parsed) {
        (_, Some(json)) => pretty(&json),
        (Value::String(s), None) => s.clone(),
        (other, None) => pretty(other),
    };
    html! { pre.mono tabindex="0" { (pretty) } }
}

pub fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).expect("JSON values serialize")
}

/// Headers as a two-column table.
pub fn headers(value: &Value) -> Markup {
    html! {
        div.table-wrap {
            table {
                (column_heads(&["Header", "Value"]))
                tbody {
                    @for (name, value) in value.as_object().into_iter().flatten() {
                        tr { td.mono { (name) } td.mono { (text(value)) } }
                    }
                }
            }
        }
    }
}

/// A table's head; an empty name is a column of buttons, named for screen
/// readers only.
pub fn column_heads(names: &[&str]) -> Markup {
    html! {
        thead { tr {
            @for name in names {
                @if name.is_empty() { th scope="col" { span.skip { "Actions" } } }
                @else { th scope="col" { (name) } }
            }
        } }
    }
}

/// An object (the API's view) by name, linked to `href`, with its `id`
/// beside it; the id alone when the object is gone.
pub fn named(object: &Value, id: &Value, href: &str) -> Markup {
    html! {
        @match object["name"].as_str() {
            Some(name) => { a href=(href) { (name) } " " span.mono.muted { (text(id)) } },
            None => span.mono { (text(id)) },
        }
    }
}

/// A definition list of labelled facts.
pub fn facts(items: &[(&str, Markup)]) -> Markup {
    html! {
        dl.facts {
            @for (label, value) in items {
                dt { (label) } dd { (value) }
            }
        }
    }
}

/// Links to the previous and next pages of `listing` (the API's list
/// answer), keeping the filter of `query` (the page's own query string).
pub fn pager(path: &str, query: &str, listing: &Value) -> Markup {
    let link = |direction: &str| {
        let cursor = listing["pagination"][direction].as_str()?;
        let query = url::form_urlencoded::Serializer::new(first_page(query))
            .append_pair(direction, cursor)
            .finish();
        Some(format!("{path}?{query}"))
    };
    html! {
        nav.pager aria-label="Pages" {
            @if let Some(href) = link("prev") { a href=(href) rel="prev" { "← Newer" } }
            @if let Some(href) = link("next") { a href=(href) rel="next" { "Older →" } }
        }
    }
}

/// Links to the neighbouring pages of a `/v1` list (`pagination` of its
/// answer), keeping the filter of `query`.
pub fn number_pager(path: &str, query: &str, pagination: &Value) -> Markup {
    let page = pagination["page"].as_u64().unwrap_or(1);
    let pages = pagination["total_pages"].as_u64().unwrap_or(1);
    let link = |to: u64| {
        let kept = url::form_urlencoded::parse(query.as_bytes()).filter(|(key, _)| key != "page");
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(kept)
            .append_pair("page", &to.to_string())
            .finish();
        format!("{path}?{query}")
    };
    html! {
        nav.pager aria-label="Pages" {
            @if page > 1 { a href=(link(page - 1)) rel="prev" { "← Newer" } }
            " page " (page) " of " (pages.max(1)) " "
            @if page < pages { a href=(link(page + 1)) rel="next" { "Older →" } }
        }
    }
}

/// `query` (a list page's) without its cursor: the first page of its filter.
pub fn first_page(query: &str) -> String {
    let kept = url::form_urlencoded::parse(query.as_bytes())
        .filter(|(key, _)| key != "next" && key != "prev");
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(kept)
        .finish()
}

/// The values a page was asked with (its filter), by name.
pub struct Chosen(Vec<(String, String)>);

impl Chosen {
    pub fn of(query: &str) -> Chosen {
        Chosen(
            url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// A labelled `<select>` of fixed values, with "any" first.
pub fn value_choice(label: &str, name: &str, values: &[&str], chosen: &Chosen) -> Markup {
    let options = values
        .iter()
        .map(|value| (value.to_string(), value.to_string()));
    choice(label, name, options, chosen)
}

/// A labelled `<select>` of (value, shown) options, with "any" first and
/// the one the page was asked with selected.
pub fn choice(
    label: &str,
    name: &str,
    options: impl Iterator<Item = (String, String)>,
    chosen: &Chosen,
) -> Markup {
    html! {
        label {
            (label)
            select name=(name) {
                option value="" { "any" }
                @for (value, shown) in options {
                    option value=(value) selected[chosen.get(name) == Some(value.as_str())] { (shown) }
                }
            }
        }
    }
}

/// The filters every list has: a time range (`created_at`) and a text
/// search, then the button that applies the form.
pub fn time_search_and_submit(chosen: &Chosen) -> Markup {
    html! {
        (text_input("From (UTC)", "created_at[gte]", "datetime-local", chosen))
        (text_input("To (UTC)", "created_at[lte]", "datetime-local", chosen))
        (text_input("Search body and headers", "search_term", "search", chosen))
        button type="submit" { "Filter" }
    }
}

/// A search of a list of objects by a part of their name (the API's
/// `name[contains]`), the way to one among thousands.
pub fn name_search(path: &str, query: &str) -> Markup {
    html! {
        form.filters method="get" action=(path) role="search" {
            (text_input("Name contains", "name[contains]", "search", &Chosen::of(query)))
            button type="submit" { "Search" }
        }
    }
}

/// A labelled input keeping the value the page was asked with.
pub fn text_input(label: &str, name: &str, kind: &str, chosen: &Chosen) -> Markup {
    html! {
        label { (label) input type=(kind) name=(name) value=[chosen.get(name)]; }
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_json_body_sent_as_text_is_pretty_printed() {
        let shown = body(&json!("{\"a\":1}")).into_string();
        assert!(shown.contains("{\n  &quot;a&quot;: 1\n}"), "{shown}");
        assert!(body(&json!("plain <b>"))
            .into_string()
            .contains("plain &lt;b&gt;"));
    }

    #[test]
    fn the_pager_keeps_the_filter_and_swaps_the_cursor() {
        let listing = json!({"pagination": {"next": "req_2"}});
        let shown =
            pager("/console/requests", "status=accepted&prev=req_9", &listing).into_string();
        assert!(
            shown.contains("href=\"/console/requests?status=accepted&amp;next=req_2\""),
            "{shown}"
        );
        assert!(!shown.contains("rel=\"prev\""));
    }

    #[test]
    fn page_links_keep_the_filter_and_swap_the_page_number() {
        let pagination = json!({"page": 2, "total_pages": 3});
        let shown = number_pager("/jobs", "status=failed&page=2", &pagination).into_string();
        assert!(
            shown.contains("href=\"/jobs?status=failed&amp;page=1\""),
            "{shown}"
        );
        assert!(
            shown.contains("href=\"/jobs?status=failed&amp;page=3\""),
            "{shown}"
        );
        let last = json!({"page": 3, "total_pages": 3});
        let shown = number_pager("/jobs", "", &last).into_string();
        assert!(!shown.contains("rel=\"next\""), "{shown}");
    }
}
