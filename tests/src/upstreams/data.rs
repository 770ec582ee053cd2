//! Static data shared by the example upstreams: countries, continents and languages.
//!
//! Populations are approximate; capital coordinates are rounded. The weather upstream knows
//! every non-null capital listed here.

/// The capital city of a country, with its approximate coordinates.
pub(super) struct Capital {
    pub(super) name: &'static str,
    pub(super) lat: f64,
    pub(super) lon: f64,
}

/// One row of the countries table.
pub(super) struct CountryData {
    pub(super) code: &'static str,
    pub(super) name: &'static str,
    pub(super) native: &'static str,
    pub(super) capital: Option<Capital>,
    pub(super) currency: Option<&'static str>,
    pub(super) population: Option<i32>,
    pub(super) continent: &'static str,
    pub(super) languages: &'static [&'static str],
    pub(super) territory: bool,
}

/// Continents as `(code, name)`, sorted by code.
pub(super) static CONTINENTS: &[(&str, &str)] = &[
    ("AF", "Africa"),
    ("AN", "Antarctica"),
    ("AS", "Asia"),
    ("EU", "Europe"),
    ("NA", "North America"),
    ("OC", "Oceania"),
    ("SA", "South America"),
];

/// Languages as `(ISO 639-1 code, English name)`.
pub(super) static LANGUAGES: &[(&str, &str)] = &[
    ("af", "Afrikaans"),
    ("am", "Amharic"),
    ("ar", "Arabic"),
    ("ay", "Aymara"),
    ("ca", "Catalan"),
    ("cs", "Czech"),
    ("da", "Danish"),
    ("de", "German"),
    ("el", "Greek"),
    ("en", "English"),
    ("es", "Spanish"),
    ("eu", "Basque"),
    ("fa", "Persian"),
    ("fi", "Finnish"),
    ("fj", "Fijian"),
    ("fr", "French"),
    ("ga", "Irish"),
    ("gl", "Galician"),
    ("gn", "Guarani"),
    ("hi", "Hindi"),
    ("id", "Indonesian"),
    ("is", "Icelandic"),
    ("it", "Italian"),
    ("ja", "Japanese"),
    ("kl", "Kalaallisut"),
    ("ko", "Korean"),
    ("ln", "Lingala"),
    ("mg", "Malagasy"),
    ("mi", "Māori"),
    ("ms", "Malay"),
    ("nb", "Norwegian Bokmål"),
    ("nd", "North Ndebele"),
    ("nl", "Dutch"),
    ("nn", "Norwegian Nynorsk"),
    ("no", "Norwegian"),
    ("pl", "Polish"),
    ("pt", "Portuguese"),
    ("qu", "Quechua"),
    ("ru", "Russian"),
    ("sk", "Slovak"),
    ("sm", "Samoan"),
    ("sn", "Shona"),
    ("sv", "Swedish"),
    ("sw", "Swahili"),
    ("ta", "Tamil"),
    ("th", "Thai"),
    ("tr", "Turkish"),
    ("uk", "Ukrainian"),
    ("vi", "Vietnamese"),
    ("xh", "Xhosa"),
    ("zh", "Chinese"),
    ("zu", "Zulu"),
];

/// Builds the countries table; `_` stands for a null capital, currency or population, and the
/// last column is `I` (independent) or `T` (territory).
macro_rules! countries {
    ($($code:literal $name:literal $native:literal $capital:tt $currency:tt $population:tt
        $continent:literal [$($language:literal),*] $status:ident;)*) => {
        &[$(CountryData {
            code: $code,
            name: $name,
            native: $native,
            capital: countries!(@capital $capital),
            currency: countries!(@opt $currency),
            population: countries!(@opt $population),
            continent: $continent,
            languages: &[$($language),*],
            territory: countries!(@territory $status),
        }),*]
    };
    (@capital _) => { None };
    (@capital ($name:literal, $lat:literal, $lon:literal)) => {
        Some(Capital { name: $name, lat: $lat, lon: $lon })
    };
    (@opt _) => { None };
    (@opt $value:literal) => { Some($value) };
    (@territory I) => { false };
    (@territory T) => { true };
}

/// Countries and territories, sorted by code.
#[rustfmt::skip]
pub(super) static COUNTRIES: &[CountryData] = countries! {
    "AD" "Andorra" "Andorra" ("Andorra la Vella", 42.51, 1.52) "EUR" 80_000 "EU" ["ca"] I;
    "AE" "United Arab Emirates" "دولة الإمارات العربية المتحدة" ("Abu Dhabi", 24.45, 54.38) "AED" 9_900_000 "AS" ["ar"] I;
    "AQ" "Antarctica" "Antarctica" _ _ _ "AN" [] T;
    "AR" "Argentina" "Argentina" ("Buenos Aires", -34.60, -58.38) "ARS" 46_000_000 "SA" ["es", "gn"] I;
    "AT" "Austria" "Österreich" ("Vienna", 48.21, 16.37) "EUR" 9_100_000 "EU" ["de"] I;
    "AU" "Australia" "Australia" ("Canberra", -35.28, 149.13) "AUD" 26_600_000 "OC" ["en"] I;
    "BE" "Belgium" "België" ("Brussels", 50.85, 4.35) "EUR" 11_800_000 "EU" ["nl", "fr", "de"] I;
    "BO" "Bolivia" "Bolivia" ("Sucre", -19.04, -65.26) "BOB" 12_200_000 "SA" ["es", "ay", "qu"] I;
    "BR" "Brazil" "Brasil" ("Brasília", -15.79, -47.88) "BRL" 216_000_000 "SA" ["pt"] I;
    "BV" "Bouvet Island" "Bouvetøya" _ "NOK" _ "AN" ["no", "nb", "nn"] T;
    "CA" "Canada" "Canada" ("Ottawa", 45.42, -75.70) "CAD" 40_000_000 "NA" ["en", "fr"] I;
    "CD" "DR Congo" "République démocratique du Congo" ("Kinshasa", -4.44, 15.27) "CDF" 102_000_000 "AF" ["fr", "ln", "sw"] I;
    "CH" "Switzerland" "Schweiz" ("Bern", 46.95, 7.45) "CHF" 8_800_000 "EU" ["de", "fr", "it"] I;
    "CL" "Chile" "Chile" ("Santiago", -33.45, -70.67) "CLP" 19_600_000 "SA" ["es"] I;
    "CN" "China" "中国" ("Beijing", 39.90, 116.41) "CNY" 1_410_000_000 "AS" ["zh"] I;
    "CO" "Colombia" "Colombia" ("Bogotá", 4.71, -74.07) "COP" 52_000_000 "SA" ["es"] I;
    "CR" "Costa Rica" "Costa Rica" ("San José", 9.93, -84.08) "CRC" 5_200_000 "NA" ["es"] I;
    "CU" "Cuba" "Cuba" ("Havana", 23.11, -82.37) "CUP" 11_000_000 "NA" ["es"] I;
    "CZ" "Czech Republic" "Česká republika" ("Prague", 50.08, 14.44) "CZK" 10_900_000 "EU" ["cs", "sk"] I;
    "DE" "Germany" "Deutschland" ("Berlin", 52.52, 13.40) "EUR" 84_000_000 "EU" ["de"] I;
    "DK" "Denmark" "Danmark" ("Copenhagen", 55.68, 12.57) "DKK" 5_900_000 "EU" ["da"] I;
    "DZ" "Algeria" "الجزائر" ("Algiers", 36.75, 3.06) "DZD" 45_600_000 "AF" ["ar"] I;
    "EC" "Ecuador" "Ecuador" ("Quito", -0.18, -78.47) "USD" 18_000_000 "SA" ["es"] I;
    "EG" "Egypt" "مصر" ("Cairo", 30.04, 31.24) "EGP" 112_000_000 "AF" ["ar"] I;
    "ES" "Spain" "España" ("Madrid", 40.42, -3.70) "EUR" 48_300_000 "EU" ["es", "eu", "ca", "gl"] I;
    "ET" "Ethiopia" "ኢትዮጵያ" ("Addis Ababa", 9.03, 38.74) "ETB" 126_000_000 "AF" ["am"] I;
    "FI" "Finland" "Suomi" ("Helsinki", 60.17, 24.94) "EUR" 5_600_000 "EU" ["fi", "sv"] I;
    "FJ" "Fiji" "Fiji" ("Suva", -18.14, 178.44) "FJD" 930_000 "OC" ["en", "fj", "hi"] I;
    "FR" "France" "France" ("Paris", 48.86, 2.35) "EUR" 68_000_000 "EU" ["fr"] I;
    "GB" "United Kingdom" "United Kingdom" ("London", 51.51, -0.13) "GBP" 68_300_000 "EU" ["en"] I;
    "GH" "Ghana" "Ghana" ("Accra", 5.60, -0.19) "GHS" 34_000_000 "AF" ["en"] I;
    "GL" "Greenland" "Kalaallit Nunaat" ("Nuuk", 64.18, -51.72) "DKK" 56_000 "NA" ["kl"] T;
    "GR" "Greece" "Ελλάδα" ("Athens", 37.98, 23.73) "EUR" 10_400_000 "EU" ["el"] I;
    "GS" "South Georgia and the South Sandwich Islands" "South Georgia" ("King Edward Point", -54.28, -36.49) "GBP" 30 "AN" ["en"] T;
    "GT" "Guatemala" "Guatemala" ("Guatemala City", 14.63, -90.51) "GTQ" 18_000_000 "NA" ["es"] I;
    "HK" "Hong Kong" "香港" ("City of Victoria", 22.28, 114.16) "HKD" 7_500_000 "AS" ["zh", "en"] T;
    "HM" "Heard Island and McDonald Islands" "Heard Island and McDonald Islands" _ "AUD" _ "AN" ["en"] T;
    "ID" "Indonesia" "Indonesia" ("Jakarta", -6.21, 106.85) "IDR" 277_000_000 "AS" ["id"] I;
    "IE" "Ireland" "Éire" ("Dublin", 53.35, -6.26) "EUR" 5_300_000 "EU" ["ga", "en"] I;
    "IN" "India" "भारत" ("New Delhi", 28.61, 77.21) "INR" 1_430_000_000 "AS" ["hi", "en"] I;
    "IR" "Iran" "ایران" ("Tehran", 35.69, 51.39) "IRR" 89_000_000 "AS" ["fa"] I;
    "IS" "Iceland" "Ísland" ("Reykjavik", 64.15, -21.94) "ISK" 390_000 "EU" ["is"] I;
    "IT" "Italy" "Italia" ("Rome", 41.90, 12.50) "EUR" 59_000_000 "EU" ["it"] I;
    "JM" "Jamaica" "Jamaica" ("Kingston", 17.97, -76.79) "JMD" 2_800_000 "NA" ["en"] I;
    "JP" "Japan" "日本" ("Tokyo", 35.68, 139.69) "JPY" 124_000_000 "AS" ["ja"] I;
    "KE" "Kenya" "Kenya" ("Nairobi", -1.29, 36.82) "KES" 55_000_000 "AF" ["en", "sw"] I;
    "KR" "South Korea" "대한민국" ("Seoul", 37.57, 126.98) "KRW" 51_700_000 "AS" ["ko"] I;
    "MA" "Morocco" "المغرب" ("Rabat", 34.02, -6.84) "MAD" 37_800_000 "AF" ["ar"] I;
    "MG" "Madagascar" "Madagasikara" ("Antananarivo", -18.88, 47.51) "MGA" 30_000_000 "AF" ["fr", "mg"] I;
    "MX" "Mexico" "México" ("Mexico City", 19.43, -99.13) "MXN" 129_000_000 "NA" ["es"] I;
    "NC" "New Caledonia" "Nouvelle-Calédonie" ("Nouméa", -22.28, 166.46) "XPF" 270_000 "OC" ["fr"] T;
    "NG" "Nigeria" "Nigeria" ("Abuja", 9.08, 7.40) "NGN" 224_000_000 "AF" ["en"] I;
    "NL" "Netherlands" "Nederland" ("Amsterdam", 52.37, 4.90) "EUR" 17_900_000 "EU" ["nl"] I;
    "NO" "Norway" "Norge" ("Oslo", 59.91, 10.75) "NOK" 5_500_000 "EU" ["no", "nb", "nn"] I;
    "NZ" "New Zealand" "New Zealand" ("Wellington", -41.29, 174.78) "NZD" 5_200_000 "OC" ["en", "mi"] I;
    "PE" "Peru" "Perú" ("Lima", -12.05, -77.04) "PEN" 34_000_000 "SA" ["es", "qu", "ay"] I;
    "PG" "Papua New Guinea" "Papua Niugini" ("Port Moresby", -9.44, 147.18) "PGK" 10_300_000 "OC" ["en"] I;
    "PH" "Philippines" "Pilipinas" ("Manila", 14.60, 120.98) "PHP" 117_000_000 "AS" ["en"] I;
    "PL" "Poland" "Polska" ("Warsaw", 52.23, 21.01) "PLN" 37_600_000 "EU" ["pl"] I;
    "PR" "Puerto Rico" "Puerto Rico" ("San Juan", 18.47, -66.11) "USD" 3_200_000 "NA" ["es", "en"] T;
    "PT" "Portugal" "Portugal" ("Lisbon", 38.72, -9.14) "EUR" 10_400_000 "EU" ["pt"] I;
    "PY" "Paraguay" "Paraguay" ("Asunción", -25.26, -57.58) "PYG" 6_900_000 "SA" ["es", "gn"] I;
    "RU" "Russia" "Россия" ("Moscow", 55.76, 37.62) "RUB" 144_000_000 "EU" ["ru"] I;
    "SA" "Saudi Arabia" "العربية السعودية" ("Riyadh", 24.71, 46.68) "SAR" 36_900_000 "AS" ["ar"] I;
    "SE" "Sweden" "Sverige" ("Stockholm", 59.33, 18.07) "SEK" 10_500_000 "EU" ["sv"] I;
    "SG" "Singapore" "Singapore" ("Singapore", 1.35, 103.82) "SGD" 5_900_000 "AS" ["en", "ms", "ta", "zh"] I;
    "SN" "Senegal" "Sénégal" ("Dakar", 14.72, -17.47) "XOF" 17_800_000 "AF" ["fr"] I;
    "TF" "French Southern Territories" "Territoire des Terres australes et antarctiques françaises" ("Port-aux-Français", -49.35, 70.22) "EUR" 150 "AN" ["fr"] T;
    "TH" "Thailand" "ประเทศไทย" ("Bangkok", 13.76, 100.50) "THB" 71_800_000 "AS" ["th"] I;
    "TR" "Turkey" "Türkiye" ("Ankara", 39.93, 32.86) "TRY" 85_300_000 "AS" ["tr"] I;
    "TV" "Tuvalu" "Tuvalu" ("Funafuti", -8.52, 179.20) "AUD" 11_000 "OC" ["en"] I;
    "TZ" "Tanzania" "Tanzania" ("Dodoma", -6.16, 35.75) "TZS" 67_000_000 "AF" ["sw", "en"] I;
    "UA" "Ukraine" "Україна" ("Kyiv", 50.45, 30.52) "UAH" 37_000_000 "EU" ["uk"] I;
    "US" "United States" "United States" ("Washington D.C.", 38.90, -77.04) "USD" 335_000_000 "NA" ["en"] I;
    "UY" "Uruguay" "Uruguay" ("Montevideo", -34.90, -56.16) "UYU" 3_400_000 "SA" ["es"] I;
    "VE" "Venezuela" "Venezuela" ("Caracas", 10.48, -66.90) "VES" 28_800_000 "SA" ["es"] I;
    "VN" "Vietnam" "Việt Nam" ("Hanoi", 21.03, 105.85) "VND" 99_000_000 "AS" ["vi"] I;
    "WS" "Samoa" "Samoa" ("Apia", -13.83, -171.76) "WST" 220_000 "OC" ["sm", "en"] I;
    "ZA" "South Africa" "South Africa" ("Pretoria", -25.75, 28.19) "ZAR" 62_000_000 "AF" ["af", "en", "xh", "zu"] I;
    "ZW" "Zimbabwe" "Zimbabwe" ("Harare", -17.83, 31.05) "ZWL" 16_600_000 "AF" ["en", "sn", "nd"] I;
};

/// The English name of a language code (the code itself if unknown).
pub(super) fn language_name(code: &str) -> &str {
    LANGUAGES
        .iter()
        .find(|(c, _)| *c == code)
        .map_or(code, |(_, name)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_consistent() {
        assert!(COUNTRIES.len() >= 60);
        assert!(
            COUNTRIES.windows(2).all(|w| w[0].code < w[1].code),
            "sorted by code"
        );
        assert!(COUNTRIES.iter().filter(|c| c.territory).count() >= 2);
        assert!(COUNTRIES.iter().filter(|c| c.capital.is_none()).count() >= 2);
        for country in COUNTRIES {
            assert!(CONTINENTS
                .iter()
                .any(|(code, _)| *code == country.continent));
            for language in country.languages {
                assert!(
                    LANGUAGES.iter().any(|(code, _)| code == language),
                    "{language}"
                );
            }
        }
        for (continent, _) in CONTINENTS {
            assert!(
                COUNTRIES.iter().any(|c| c.continent == *continent),
                "{continent}"
            );
        }
    }
}
