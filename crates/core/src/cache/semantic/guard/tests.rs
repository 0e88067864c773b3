//! The guard per category, in both directions, and the paraphrases it must let through.

use super::{Guard, Refusal};

fn guard() -> Guard {
    Guard::default()
}

/// Asserts `a` vs `b` is refused for `why`, whichever prompt is the cached one.
fn refused(why: Refusal, a: &str, b: &str) {
    let guard = guard();
    assert_eq!(guard.refuses(a, b), Some(why), "{a:?} vs {b:?}");
    assert_eq!(guard.refuses(b, a), Some(why), "{b:?} vs {a:?}");
}

fn allowed(a: &str, b: &str) {
    let guard = guard();
    assert_eq!(
        guard.refuses(a, b),
        None,
        "{a:?} vs {b:?}\n{:#?}\n{:#?}",
        guard.signature(a),
        guard.signature(b)
    );
    assert_eq!(guard.refuses(b, a), None, "{b:?} vs {a:?}");
}

#[test]
fn identical_prompts_pass() {
    allowed(
        "Is the drug safe during pregnancy?",
        "Is the drug safe during pregnancy?",
    );
    allowed("", "");
}

#[test]
fn numbers_amounts_and_percentages_must_match() {
    refused(
        Refusal::Numbers,
        "Convert 100 USD to EUR",
        "Convert 200 USD to EUR",
    );
    refused(Refusal::Numbers, "What is 15% of 80?", "What is 15% of 90?");
    refused(
        Refusal::Numbers,
        "Raise the price by 10%",
        "Raise the price by 10",
    );
    refused(
        Refusal::Numbers,
        "Is 1.5 mg a safe dose?",
        "Is 15 mg a safe dose?",
    );
    refused(
        Refusal::Numbers,
        "Split the bill between five people",
        "Split the bill between six people",
    );
    refused(
        Refusal::Numbers,
        "Is 3 bigger than 5?",
        "Is 5 bigger than 3?",
    );
    refused(
        Refusal::Numbers,
        "Summarise the report",
        "Summarise the report in 3 bullet points",
    );
}

#[test]
fn numbers_are_normalised_before_comparing() {
    allowed(
        "Invest 1,000 dollars in index funds",
        "Invest 1000 dollars in index funds",
    );
    allowed("What is 20 percent of 50?", "What's 20% of 50?");
    allowed(
        "Split the bill between five people",
        "Split the bill between 5 people",
    );
    allowed("A loan of twenty-five thousand", "a loan of 25000");
    allowed("Budget of 1.5 million", "budget of 1,500,000");
    allowed("Budget of $10k", "budget of $10,000");
    allowed("Send 100 dollars", "send $100");
    allowed("Which one is faster?", "Which is faster?");
    allowed(
        "Plan a 3-day trip to Lisbon",
        "Plan a trip to Lisbon for three days",
    );
}

#[test]
fn dates_times_and_versions_must_match() {
    refused(
        Refusal::Numbers,
        "Meetings on 2024-03-05",
        "Meetings on 2024-03-06",
    );
    refused(
        Refusal::Numbers,
        "Book a table for 7pm",
        "Book a table for 8 pm",
    );
    refused(
        Refusal::Numbers,
        "What changed in v2 of the API?",
        "What changed in v3 of the API?",
    );
    refused(
        Refusal::Numbers,
        "Flights to Rome on Monday",
        "Flights to Rome on Tuesday",
    );
    refused(
        Refusal::Numbers,
        "What's the weather tomorrow in Oslo?",
        "What's the weather today in Oslo?",
    );
    refused(
        Refusal::Numbers,
        "Sales figures for next week",
        "Sales figures for last week",
    );
    refused(
        Refusal::Numbers,
        "Holidays in January",
        "Holidays in February",
    );
    refused(
        Refusal::Numbers,
        "Is the office open on 3 May?",
        "Is the office open on 4 May?",
    );
    allowed("Book a table for 7pm", "Reserve a table at 7 PM");
    allowed("May I book a table?", "Can I book a table?");
}

#[test]
fn negation_compares_counts_not_words() {
    refused(
        Refusal::Negation,
        "Should I take ibuprofen with food?",
        "Should I not take ibuprofen with food?",
    );
    refused(
        Refusal::Negation,
        "Why does my build work?",
        "Why doesn't my build work?",
    );
    refused(
        Refusal::Negation,
        "Which apps can run offline?",
        "Which apps can never run offline?",
    );
    refused(
        Refusal::Negation,
        "Is it safe to travel with a cold?",
        "Is it safe to travel without a cold?",
    );
    refused(
        Refusal::Negation,
        "Does it work on Linux?",
        "Doesn’t it work on Linux?",
    );
    allowed(
        "Why does my code not compile?",
        "Why won't my code compile?",
    );
    allowed("I do not want emails", "I don't want emails");
}

#[test]
fn antonym_prefixes_refuse_only_against_the_stem() {
    refused(
        Refusal::Antonym,
        "Is the drug safe during pregnancy?",
        "Is the drug unsafe during pregnancy?",
    );
    refused(
        Refusal::Antonym,
        "Is it legal to record calls?",
        "Is it illegal to record calls?",
    );
    refused(
        Refusal::Antonym,
        "Why is the token valid?",
        "Why is the token invalid?",
    );
    refused(
        Refusal::Antonym,
        "Is this a possible outcome?",
        "Is this an impossible outcome?",
    );
    refused(
        Refusal::Antonym,
        "List the relevant clauses",
        "List the irrelevant clauses",
    );
    refused(
        Refusal::Antonym,
        "Tips for a profit organisation",
        "Tips for a non-profit organisation",
    );
    refused(
        Refusal::Antonym,
        "Is this plugin useful?",
        "Is this plugin useless?",
    );
    refused(
        Refusal::Antonym,
        "How do I install the agent?",
        "How do I uninstall the agent?",
    );
    allowed("I understand the contract", "I get the contract");
    allowed(
        "Explain the stand-up format",
        "What is the stand-up format? I understand it a bit",
    );
    allowed(
        "How do I put data in the input field?",
        "Put data into the input field",
    );
}

#[test]
fn comparisons_must_match() {
    refused(Refusal::Comparison, "Orders over $100", "Orders under $100");
    refused(
        Refusal::Comparison,
        "Rows where price > 10",
        "Rows where price < 10",
    );
    refused(
        Refusal::Comparison,
        "Rows where price >= 10",
        "Rows where price > 10",
    );
    refused(
        Refusal::Comparison,
        "Users with at least 3 logins",
        "Users with at most 3 logins",
    );
    refused(
        Refusal::Comparison,
        "Take it before meals",
        "Take it after meals",
    );
    refused(
        Refusal::Comparison,
        "Which plan costs more?",
        "Which plan costs less?",
    );
    refused(
        Refusal::Comparison,
        "The cheapest flights to Rome",
        "Flights to Rome",
    );
    allowed("Orders above $100", "Orders over $100");
    allowed("Rows where price > 10", "rows with price greater than 10");
    allowed("a -> b", "a then b");
}

#[test]
fn quoted_strings_must_match_in_order() {
    refused(
        Refusal::Quoted,
        "Translate \"good morning\" to French",
        "Translate \"good night\" to French",
    );
    refused(
        Refusal::Quoted,
        "What does `git rebase` do?",
        "What does `git merge` do?",
    );
    refused(
        Refusal::Quoted,
        "Replace 'foo' with 'bar'",
        "Replace 'bar' with 'foo'",
    );
    refused(
        Refusal::Quoted,
        "Explain “carpe diem”",
        "Explain “memento mori”",
    );
    allowed(
        "Translate 'good morning' to French",
        "Translate “good morning” into French",
    );
    allowed(
        "Why don't users' files sync?",
        "Why do users' files not sync?",
    );
}

#[test]
fn names_and_codes_must_match_in_order() {
    refused(
        Refusal::NamesOrCodes,
        "Convert 100 USD to EUR",
        "Convert 100 EUR to USD",
    );
    refused(
        Refusal::NamesOrCodes,
        "What is the capital of France?",
        "What is the capital of Germany?",
    );
    refused(
        Refusal::NamesOrCodes,
        "Is gpt-4o better at code than claude-3?",
        "Is claude-3 better at code than gpt-4o?",
    );
    refused(
        Refusal::NamesOrCodes,
        "Parse an ISO-8601 date in Python",
        "Parse an ISO-8601 date in Go",
    );
    refused(
        Refusal::NamesOrCodes,
        "What does foo_bar return?",
        "What does foo_baz return?",
    );
    refused(
        Refusal::NamesOrCodes,
        "Paris hotels near the station",
        "London hotels near the station",
    );
    refused(
        Refusal::NamesOrCodes,
        "Explain HTTP status 404",
        "Explain FTP status 404",
    );
    allowed(
        "How do I sort a list in Python?",
        "What's the way to sort a python list?",
    );
    allowed(
        "Python lists vs tuples: differences?",
        "What are the differences between tuples and lists in Python?",
    );
    allowed("How Do I Reset My Password", "how do i reset my password");
    allowed("Reset my password please", "How do I reset my password?");
}

#[test]
fn opposite_pairs_must_match() {
    refused(
        Refusal::Opposites,
        "How do I enable two-factor login?",
        "How do I disable two-factor login?",
    );
    refused(
        Refusal::Opposites,
        "How do I enable two-factor login?",
        "How do I turn off two-factor login?",
    );
    refused(
        Refusal::Opposites,
        "Should I buy the stock now?",
        "Should I sell the stock now?",
    );
    refused(
        Refusal::Opposites,
        "How do I import contacts?",
        "How do I export contacts?",
    );
    refused(
        Refusal::Opposites,
        "Turn on dark mode",
        "Turn off dark mode",
    );
    refused(
        Refusal::Opposites,
        "Why was my request denied?",
        "Why was my request allowed?",
    );
    refused(
        Refusal::Opposites,
        "Stopping the container",
        "Starting the container",
    );
    refused(
        Refusal::Opposites,
        "Is coffee good for your heart?",
        "Is coffee bad for your heart?",
    );
    refused(
        Refusal::Opposites,
        "Heart attack symptoms in women",
        "Heart attack symptoms in men",
    );
    refused(
        Refusal::Negation,
        "Which foods should I eat when pregnant?",
        "Which foods should I avoid when pregnant?",
    );
    allowed(
        "What's a good way to learn Rust?",
        "How should I learn Rust?",
    );
    allowed("What's the tax on my bonus?", "How is my bonus taxed?");
    allowed("Enable SSO for the team", "How to enable SSO for the team");
    allowed(
        "Enabling SSO for the team",
        "Guide to enabling SSO for the team",
    );
}

#[test]
fn configured_opposites_are_strong_and_may_be_phrases() {
    let guard = Guard::new(&[
        ("approve".into(), "decline".into()),
        ("turn on".into(), "switch off".into()),
    ]);
    assert_eq!(
        guard.refuses("Approve the invoice", "Decline the invoice"),
        Some(Refusal::Opposites)
    );
    assert_eq!(
        guard.refuses("Approve the invoice", "Pay the invoice"),
        Some(Refusal::Opposites)
    );
    assert_eq!(
        guard.refuses("Turn on the heating", "Switch off the heating"),
        Some(Refusal::Opposites)
    );
    assert_eq!(
        guard.refuses("Approved invoices", "approved invoices"),
        None
    );
}

#[test]
fn paraphrases_pass() {
    allowed(
        "How do I reset my password?",
        "What's the way to reset my password?",
    );
    allowed(
        "What are the side effects of ibuprofen?",
        "ibuprofen side effects?",
    );
    allowed(
        "Can you explain what a closure is in JavaScript?",
        "Explain JavaScript closures",
    );
    allowed("How long does a refund take?", "how long do refunds take?");
    allowed(
        "Write a SQL query that counts orders per customer",
        "SQL query counting orders per customer",
    );
    allowed(
        "Tips for a job interview",
        "How should I prepare for a job interview?",
    );
}

#[test]
fn refusal_names_are_snake_case() {
    assert_eq!(Refusal::NamesOrCodes.to_string(), "names_or_codes");
    assert_eq!(Refusal::Numbers.to_string(), "numbers");
}

#[test]
fn odd_input_neither_panics_nor_refuses_itself() {
    let guard = guard();
    for text in [
        "'",
        "\"",
        "```",
        "`",
        "’",
        "‘x",
        "1,",
        "v",
        "v.",
        "-5",
        "5-",
        "5-day-",
        "1,2,3",
        "$",
        "%",
        "İstanbul İİ",
        "🙂 5 🙂",
        "e\u{301}",
        "<=>",
        "a->b => c",
        "'unterminated",
        "1,000,00",
        "9am-5pm",
        "3:",
        "twenty-",
        "-twenty",
        "hundred and",
        "and five",
        "at",
        "best",
    ] {
        assert_eq!(guard.refuses(text, text), None, "{text:?}");
    }
}

proptest::proptest! {
    #[test]
    fn a_prompt_never_refuses_itself(text in "\\PC{0,80}") {
        let guard = guard();
        proptest::prop_assert_eq!(guard.refuses(&text, &text), None);
    }

    #[test]
    fn refusing_is_symmetric(a in "[a-zA-Z0-9 ,.'\"%$<>-]{0,40}", b in "[a-zA-Z0-9 ,.'\"%$<>-]{0,40}") {
        let guard = guard();
        proptest::prop_assert_eq!(guard.refuses(&a, &b).is_some(), guard.refuses(&b, &a).is_some());
    }
}
