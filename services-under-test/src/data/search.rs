//! Name search: every word of the query must start a word of the name ("silv wol" finds
//! "The Silver Wolfs"); results are ranked exact name first, then by popularity.

use std::collections::BTreeMap;

use super::{Album, Artist, Dataset, Track};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    Artist,
    Album,
    Track,
}

impl Category {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "artist" => Some(Category::Artist),
            "album" => Some(Category::Album),
            "track" => Some(Category::Track),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchHit {
    pub category: Category,
    pub id: u32,
}

#[derive(Default)]
struct Postings {
    /// word -> ids of the names holding it, ascending.
    words: BTreeMap<String, Vec<u32>>,
}

impl Postings {
    fn add(&mut self, id: u32, name: &str) {
        for word in tokens(name) {
            let ids = self.words.entry(word).or_default();
            if ids.last() != Some(&id) {
                ids.push(id);
            }
        }
    }

    fn prefix(&self, prefix: &str) -> Vec<u32> {
        let mut ids: Vec<u32> = self
            .words
            .range(prefix.to_owned()..)
            .take_while(|(w, _)| w.starts_with(prefix))
            .flat_map(|(_, ids)| ids.iter().copied())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    fn all_prefixes(&self, query: &[String]) -> Vec<u32> {
        let mut result: Option<Vec<u32>> = None;
        for word in query {
            let ids = self.prefix(word);
            result = Some(match result {
                None => ids,
                Some(prev) => intersect(&prev, &ids),
            });
        }
        result.unwrap_or_default()
    }
}

fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

pub fn tokens(s: &str) -> impl Iterator<Item = String> + '_ {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

#[derive(Default)]
pub struct SearchIndex {
    artists: Postings,
    albums: Postings,
    tracks: Postings,
}

impl SearchIndex {
    pub fn build(artists: &[Artist], albums: &[Album], tracks: &[Track]) -> Self {
        let mut index = SearchIndex::default();
        for a in artists {
            index.artists.add(a.id, &a.name);
        }
        for a in albums {
            index.albums.add(a.id, &a.title);
        }
        for t in tracks {
            index.tracks.add(t.id, &t.title);
        }
        index
    }

    pub fn search(&self, data: &Dataset, query: &str, category: Category) -> Vec<SearchHit> {
        let words: Vec<String> = tokens(query).collect();
        if words.is_empty() {
            return Vec::new();
        }
        let wanted = query.trim().to_lowercase();
        let (postings, name_and_popularity): (&Postings, &dyn Fn(u32) -> (String, u32)) =
            match category {
                Category::Artist => (&self.artists, &|id| {
                    data.artist(id)
                        .map(|a| (a.name.to_lowercase(), a.popularity))
                        .unwrap_or_default()
                }),
                Category::Album => (&self.albums, &|id| {
                    data.album(id)
                        .map(|a| {
                            let pop = data.artist(a.artist).map(|x| x.popularity).unwrap_or(0);
                            (a.title.to_lowercase(), pop)
                        })
                        .unwrap_or_default()
                }),
                Category::Track => (&self.tracks, &|id| {
                    data.track(id)
                        .map(|t| (t.title.to_lowercase(), t.popularity))
                        .unwrap_or_default()
                }),
            };
        let mut ranked: Vec<(bool, u32, u32)> = postings
            .all_prefixes(&words)
            .into_iter()
            .map(|id| {
                let (name, popularity) = name_and_popularity(id);
                (name == wanted, popularity, id)
            })
            .collect();
        ranked.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
        ranked
            .into_iter()
            .map(|(_, _, id)| SearchHit { category, id })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_query_word_must_prefix_a_name_word() {
        let data = Dataset::generate(3, 2000);
        let target = data.artist(42).unwrap().name.clone();
        let hits = data.search(&target, Category::Artist);
        assert_eq!(
            hits.first()
                .map(|h| data.artist(h.id).unwrap().name.clone()),
            Some(target.clone())
        );
        let first_word: String = target.split(' ').next().unwrap().chars().take(3).collect();
        for h in data.search(&first_word, Category::Artist) {
            let name = data.artist(h.id).unwrap().name.to_lowercase();
            assert!(
                tokens(&name).any(|w| w.starts_with(&first_word.to_lowercase())),
                "{name}"
            );
        }
        assert!(data.search("zzzzqqq", Category::Track).is_empty());
        assert!(data.search("  ", Category::Album).is_empty());
    }

    #[test]
    fn intersect_keeps_common_ids() {
        assert_eq!(intersect(&[1, 3, 5, 7], &[2, 3, 7, 9]), vec![3, 7]);
        assert!(intersect(&[], &[1]).is_empty());
    }
}
