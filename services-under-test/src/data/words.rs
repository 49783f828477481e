//! Word lists the catalogue's names are made from. Plain words mixed by pattern give names
//! that read like a real catalogue's, which matters for searches a person types.

pub const GENRES: &[&str] = &[
    "rock", "pop", "jazz", "electronic", "hip-hop", "classical", "folk", "metal", "soul", "reggae",
    "country", "blues",
];

pub const COUNTRIES: &[&str] = &["GB", "US", "FI", "SE", "DE", "FR", "NL", "JP", "BR", "AU", "CA", "NG", "IE", "NO"];

pub const CITIES: &[&str] = &[
    "Bristol", "Helsinki", "Austin", "Manchester", "Detroit", "Lagos", "Osaka", "Berlin",
    "Gothenburg", "Montreal", "Melbourne", "Dublin", "Seattle", "Glasgow", "Lyon", "Utrecht",
    "Recife", "Bergen", "Nashville", "Leeds",
];

pub const FIRST_NAMES: &[&str] = &[
    "Ada", "Billie", "Carmen", "Dexter", "Elena", "Felix", "Grace", "Hugo", "Iris", "Jonah",
    "Kira", "Leon", "Maya", "Nico", "Olive", "Pablo", "Quinn", "Rosa", "Silas", "Tara", "Ulla",
    "Viktor", "Wren", "Xavi", "Yara", "Zane", "Mikko", "Sofia", "Otis", "Nina", "Ezra", "Lena",
    "Marvin", "Aretha", "Joni", "Miles", "Nora", "Ravi", "Selma", "Theo",
];

pub const LAST_NAMES: &[&str] = &[
    "Abbott", "Baker", "Castillo", "Dahl", "Ekström", "Fontaine", "Garland", "Hart", "Ilves",
    "Jensen", "Kowalski", "Lindqvist", "Moreau", "Nakamura", "Okafor", "Perkins", "Quist",
    "Rivera", "Sato", "Turner", "Underwood", "Virtanen", "Walsh", "Young", "Zimmer", "Holloway",
    "Mercer", "Sinclair", "Blackwood", "Ashford", "Vance", "Larkin", "Monroe", "Delaney",
];

pub const ADJECTIVES: &[&str] = &[
    "Silver", "Electric", "Velvet", "Broken", "Golden", "Midnight", "Crimson", "Hollow", "Wild",
    "Quiet", "Neon", "Paper", "Northern", "Burning", "Lonely", "Frozen", "Secret", "Little",
    "Restless", "Cosmic", "Empty", "Gentle", "Savage", "Lucky", "Distant", "Sleepy", "Radiant",
    "Rusty", "Hidden", "Endless", "Bitter", "Tender", "Faded", "Howling", "Lost",
];

pub const NOUNS: &[&str] = &[
    "Wolf", "River", "Engine", "Lantern", "Harbour", "Sparrow", "Mirror", "Comet", "Orchard",
    "Tiger", "Ghost", "Machine", "Garden", "Satellite", "Canyon", "Echo", "Raven", "Lighthouse",
    "Monsoon", "Pilot", "Prophet", "Circus", "Temple", "Harvest", "Kingdom", "Valley", "Signal",
    "Horizon", "Anchor", "Meadow", "Fever", "Thunder", "Cathedral", "Shadow", "Ocean", "Dynamo",
    "Compass", "Falcon", "Avalanche", "Carousel",
];

pub const TITLE_STARTS: &[&str] = &[
    "Dancing in", "Waiting for", "Letters to", "Running from", "Songs for", "Lost in", "Back to",
    "Dreaming of", "Under the", "Beyond the", "Ballad of", "Return to", "Light of", "Night in",
    "Fire on", "Rain over", "Echoes of", "Heart of", "Road to", "Ghosts of",
];

pub const TITLE_ENDS: &[&str] = &[
    "the Dark", "Tomorrow", "the Sea", "Yesterday", "Paris", "the City", "Summer", "the Moon",
    "Helsinki", "the River", "Midnight", "the Stars", "Home", "the Desert", "Winter", "Nowhere",
    "the Valley", "Tokyo", "Forever", "the Storm", "Lagos", "the North", "Bristol", "Dawn",
];

pub const SINGLE_WORD_TITLES: &[&str] = &[
    "Gravity", "Wildfire", "Afterglow", "Heartbeat", "Daydream", "Runaway", "Paradise", "Undertow",
    "Stardust", "Hurricane", "Lullaby", "Firefly", "Moonlight", "Overdrive", "Serenade", "Velocity",
    "Mirage", "Reverie", "Solstice", "Tidal",
];
