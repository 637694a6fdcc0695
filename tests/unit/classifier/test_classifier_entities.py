"""People, places and organisations named in an article."""

from __future__ import annotations

from dmzwatch.classifier.engine import Classifier


def test_people_are_read_after_titles_and_korean_surnames(classifier: Classifier) -> None:
    people = classifier.classify(
        "Kim Yong Chol meets Pompeo",
        "North Korean leader Kim Jong Un sent Kim Yong Chol to New York, where he met Secretary "
        "Mike Pompeo. President Donald Trump said Trump would meet Kim in June. Jang Song-thaek "
        "was executed in 2013, and Lt. Viktor Belenko defected in 1976.",
    ).entities.people
    assert set(people) >= {
        "Kim Jong Un",
        "Kim Yong Chol",
        "Mike Pompeo",
        "Donald Trump",
        "Jang Song-thaek",
        "Viktor Belenko",
    }
    assert "Trump" not in people  # already named in full
    assert "Kim" not in people


def test_common_words_that_look_like_surnames_are_not_people(classifier: Classifier) -> None:
    people = classifier.classify(
        "Song Is Over",
        "The song was played in Park Avenue. Moon Over Miami is a film. An official said the "
        "leader would attend.",
    ).entities.people
    assert people == ()


def test_places_and_organisations_come_from_the_gazetteer(classifier: Classifier) -> None:
    entities = classifier.classify(
        "Workers' Party meets in Pyongyang",
        "The Workers' Party of Korea met in Pyongyang, KCNA said. The DPRK's Ministry of State "
        "Security (MSS) was criticised, and Seoul's National Intelligence Service said the "
        "meeting was held near Panmunjom. Let us wait for the UN.",
    ).entities
    assert set(entities.places) >= {"Pyongyang", "North Korea", "Seoul", "Panmunjom"}
    assert "United States" not in entities.places  # "us" the pronoun is not "US"
    assert set(entities.organisations) >= {
        "Workers' Party of Korea",
        "Korean Central News Agency",
        "Ministry of State Security",
        "National Intelligence Service",
        "United Nations",
    }


def test_each_entity_is_listed_once_in_order_of_first_mention(classifier: Classifier) -> None:
    entities = classifier.classify(
        "", "Seoul and Pyongyang traded insults. Pyongyang said Seoul was to blame."
    ).entities
    assert entities.places == ("Seoul", "Pyongyang")
