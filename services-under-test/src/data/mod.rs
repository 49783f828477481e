//! The catalogue's data: artists, albums and tracks generated deterministically from a seed,
//! so every instance of every service (catalogue, mixes, media) agrees on the same world
//! without a shared database.

mod search;
mod words;

use std::collections::HashMap;

use rand::{Rng, SeedableRng};
// ChaCha rather than StdRng: its output is specified and stable across `rand` versions, so a
// seed names the same catalogue forever.
use rand_chacha::ChaCha8Rng;

use search::SearchIndex;
pub use search::{Category, SearchHit};
pub use words::GENRES;

/// The default number of artists: enough for 100k+ tracks.
pub const DEFAULT_ARTISTS: u32 = 10_000;
/// How many similar artists a lookup returns.
pub const SIMILAR: usize = 10;
/// How many top tracks an artist has.
pub const TOP_TRACKS: usize = 10;

#[derive(Debug, Clone)]
pub struct Artist {
    pub id: u32,
    pub name: String,
    pub genre: &'static str,
    pub country: &'static str,
    pub city: &'static str,
    pub formed: u16,
    pub popularity: u32,
    pub albums: Vec<u32>,
    pub top_tracks: Vec<u32>,
}

#[derive(Debug, Clone)]
pub struct Album {
    pub id: u32,
    pub artist: u32,
    pub title: String,
    pub year: u16,
    pub tracks: Vec<u32>,
}

#[derive(Debug, Clone)]
pub struct Track {
    pub id: u32,
    pub artist: u32,
    pub album: u32,
    pub title: String,
    pub number: u8,
    pub duration_secs: u16,
    pub popularity: u32,
}

pub struct Dataset {
    pub seed: u64,
    artists: Vec<Artist>,
    albums: Vec<Album>,
    tracks: Vec<Track>,
    by_genre: HashMap<&'static str, Vec<u32>>,
    index: SearchIndex,
}

fn pick<'a>(rng: &mut ChaCha8Rng, list: &'a [&'a str]) -> &'a str {
    list[rng.random_range(0..list.len())]
}

fn artist_name(rng: &mut ChaCha8Rng) -> String {
    use words::*;
    match rng.random_range(0..7) {
        0 => format!("{} {}", pick(rng, FIRST_NAMES), pick(rng, LAST_NAMES)),
        1 => format!("The {} {}s", pick(rng, ADJECTIVES), pick(rng, NOUNS)),
        2 => format!("{} {}", pick(rng, ADJECTIVES), pick(rng, NOUNS)),
        3 => format!("{} & the {}s", pick(rng, FIRST_NAMES), pick(rng, NOUNS)),
        4 => format!("DJ {}", pick(rng, NOUNS)),
        5 => format!("{} {} Trio", pick(rng, FIRST_NAMES), pick(rng, LAST_NAMES)),
        _ => format!("{} of {}", pick(rng, NOUNS), pick(rng, CITIES)),
    }
}

fn title(rng: &mut ChaCha8Rng) -> String {
    use words::*;
    match rng.random_range(0..4) {
        0 => pick(rng, SINGLE_WORD_TITLES).to_owned(),
        1 => format!("{} {}", pick(rng, ADJECTIVES), pick(rng, NOUNS)),
        _ => format!("{} {}", pick(rng, TITLE_STARTS), pick(rng, TITLE_ENDS)),
    }
}

impl Dataset {
    /// Generates the same catalogue for the same `(seed, artists)`, on any machine.
    pub fn generate(seed: u64, artist_count: u32) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut artists = Vec::with_capacity(artist_count as usize);
        let mut albums = Vec::new();
        let mut tracks: Vec<Track> = Vec::new();
        for id in 1..=artist_count {
            // A long tail: few artists are popular, most are not.
            let popularity = 1_000_000 / rng.random_range(1..=1000u32);
            let formed = rng.random_range(1960..=2024);
            let mut artist = Artist {
                id,
                name: artist_name(&mut rng),
                genre: pick(&mut rng, GENRES),
                country: pick(&mut rng, words::COUNTRIES),
                city: pick(&mut rng, words::CITIES),
                formed,
                popularity,
                albums: Vec::new(),
                top_tracks: Vec::new(),
            };
            // At least 2 albums of 5 tracks each: 10+ tracks per artist, 100k+ in all.
            for _ in 0..rng.random_range(2..=3) {
                let album_id = albums.len() as u32 + 1;
                let mut album = Album {
                    id: album_id,
                    artist: id,
                    title: title(&mut rng),
                    year: rng.random_range(formed..=2026),
                    tracks: Vec::new(),
                };
                for number in 1..=rng.random_range(5..=8u8) {
                    let track_id = tracks.len() as u32 + 1;
                    tracks.push(Track {
                        id: track_id,
                        artist: id,
                        album: album_id,
                        title: title(&mut rng),
                        number,
                        duration_secs: rng.random_range(95..=420),
                        popularity: popularity / 4 + rng.random_range(0..=popularity.max(1)),
                    });
                    album.tracks.push(track_id);
                }
                artist.albums.push(album_id);
                albums.push(album);
            }
            let mut own: Vec<u32> = artist
                .albums
                .iter()
                .flat_map(|a| albums[*a as usize - 1].tracks.iter().copied())
                .collect();
            own.sort_by_key(|t| std::cmp::Reverse(tracks[*t as usize - 1].popularity));
            own.truncate(TOP_TRACKS);
            artist.top_tracks = own;
            artists.push(artist);
        }
        let mut by_genre: HashMap<&'static str, Vec<u32>> = HashMap::new();
        for a in &artists {
            by_genre.entry(a.genre).or_default().push(a.id);
        }
        let index = SearchIndex::build(&artists, &albums, &tracks);
        Dataset {
            seed,
            artists,
            albums,
            tracks,
            by_genre,
            index,
        }
    }

    pub fn artist(&self, id: u32) -> Option<&Artist> {
        self.artists.get((id as usize).checked_sub(1)?)
    }

    pub fn album(&self, id: u32) -> Option<&Album> {
        self.albums.get((id as usize).checked_sub(1)?)
    }

    pub fn track(&self, id: u32) -> Option<&Track> {
        self.tracks.get((id as usize).checked_sub(1)?)
    }

    pub fn artist_count(&self) -> usize {
        self.artists.len()
    }

    pub fn album_count(&self) -> usize {
        self.albums.len()
    }

    pub fn track_count(&self) -> usize {
        self.tracks.len()
    }

    /// Artists of one genre, in id order.
    pub fn genre_artists(&self, genre: &str) -> &[u32] {
        self.by_genre.get(genre).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Artists of the same genre near this one: stable, and symmetric enough to feel real.
    pub fn similar(&self, id: u32) -> Vec<u32> {
        let Some(artist) = self.artist(id) else {
            return Vec::new();
        };
        let peers = self.genre_artists(artist.genre);
        let Ok(pos) = peers.binary_search(&id) else {
            return Vec::new();
        };
        let n = peers.len();
        let mut similar = Vec::with_capacity(SIMILAR);
        for d in 1..n {
            for i in [(pos + d) % n, (pos + n - d) % n] {
                let peer = peers[i];
                if peer != id && !similar.contains(&peer) && similar.len() < SIMILAR {
                    similar.push(peer);
                }
            }
        }
        similar
    }

    /// A short biography made from the artist's facts.
    pub fn bio(&self, artist: &Artist) -> String {
        let albums = artist.albums.len();
        let first = artist.albums.first().and_then(|a| self.album(*a));
        let latest = artist.albums.last().and_then(|a| self.album(*a));
        let mut bio = format!(
            "{name} formed in {city} in {formed} and quickly became one of the most talked-about {genre} acts of their generation. \
             Across {albums} albums they have shaped a sound that is unmistakably their own, equal parts craft and nerve.",
            name = artist.name,
            city = artist.city,
            formed = artist.formed,
            genre = artist.genre,
        );
        if let (Some(first), Some(latest)) = (first, latest) {
            bio.push_str(&format!(
                " Their debut, \"{}\" ({}), set the tone; \"{}\" ({}) is their most recent record, and its singles still fill playlists across {}.",
                first.title, first.year, latest.title, latest.year, artist.country
            ));
        }
        bio
    }

    pub fn search(&self, query: &str, category: Category) -> Vec<SearchHit> {
        self.index.search(self, query, category)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_catalogue_and_enough_of_it() {
        let a = Dataset::generate(7, DEFAULT_ARTISTS);
        let b = Dataset::generate(7, DEFAULT_ARTISTS);
        assert_eq!(a.artist_count(), 10_000);
        assert!(a.track_count() >= 100_000, "{} tracks", a.track_count());
        for id in [1, 500, 10_000] {
            assert_eq!(a.artist(id).unwrap().name, b.artist(id).unwrap().name);
        }
        let c = Dataset::generate(8, DEFAULT_ARTISTS);
        let differs = (1..=100).any(|id| a.artist(id).unwrap().name != c.artist(id).unwrap().name);
        assert!(differs);
    }

    #[test]
    fn references_are_consistent() {
        let d = Dataset::generate(1, 300);
        for id in 1..=300 {
            let artist = d.artist(id).unwrap();
            assert!(!artist.top_tracks.is_empty());
            for t in &artist.top_tracks {
                assert_eq!(d.track(*t).unwrap().artist, id);
            }
            for a in &artist.albums {
                let album = d.album(*a).unwrap();
                assert_eq!(album.artist, id);
                assert!(album.year >= artist.formed);
            }
            let similar = d.similar(id);
            assert!(
                similar
                    .iter()
                    .all(|s| *s != id && d.artist(*s).unwrap().genre == artist.genre)
            );
        }
        assert!(d.artist(0).is_none() && d.artist(301).is_none());
    }
}
