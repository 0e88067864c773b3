//! Grounding, lexically: the share of the answer's content words that the context the request
//! carried (its system, developer and tool messages, where RAG applications put retrieved
//! documents) contains. Cheap and predictable; it cannot tell a paraphrase from an invention, so
//! it flags answers that stray far from their sources rather than proving faithfulness.

use std::collections::HashSet;

/// Words that carry no claim: they are in any text, so they say nothing about support.
const STOPWORDS: &[&str] = &[
    "the", "and", "that", "this", "with", "from", "have", "has", "had", "were", "was", "are",
    "for", "not", "but", "you", "your", "they", "their", "there", "which", "what", "when", "where",
    "will", "would", "could", "should", "can", "about", "into", "than", "then", "them", "these",
    "those", "been", "being", "also", "such", "some", "any", "each", "its", "our", "more", "most",
    "other", "only", "very", "just", "over", "does", "did", "how", "who",
];

/// The score in 0..=1, or `None` when the answer has no content words or there is no context.
pub fn score(answer: &str, context: &str) -> Option<f32> {
    if context.trim().is_empty() {
        return None;
    }
    let known: HashSet<String> = words(context).collect();
    let (mut total, mut supported) = (0u32, 0u32);
    for w in words(answer) {
        total += 1;
        supported += u32::from(known.contains(&w));
    }
    (total > 0).then(|| supported as f32 / total as f32)
}

/// Lower-cased words of three letters or more, digits included, stopwords left out.
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 3)
        .map(str::to_lowercase)
        .filter(|w| !STOPWORDS.contains(&w.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supported_answers_score_high_and_inventions_low() {
        let context = "The Eiffel Tower is 330 metres tall and was completed in 1889 in Paris.";
        let faithful = score(
            "The Eiffel Tower was completed in 1889; it is 330 metres tall.",
            context,
        );
        let invented = score(
            "Built by Romans, the colosseum hosted gladiator fights.",
            context,
        );
        assert!(faithful.unwrap() > 0.9, "{faithful:?}");
        assert!(invented.unwrap() < 0.2, "{invented:?}");
        assert_eq!(score("anything", ""), None);
    }
}
