"""Each label definition of issue 3, and each exclusion, pinned with a short example.

The examples are written for these tests. Bodies are a few sentences, like the lead of a news
story; a title and its first sentences decide the label, as in real articles.
"""

from __future__ import annotations

import pytest

from dmzwatch.classifier.engine import Classifier

PURGE = [
    pytest.param(
        "North Korea executes former defence minister",
        "North Korea executed its former defence minister by firing squad for disloyalty, "
        "South Korea's spy agency told lawmakers. The minister had been accused of dozing off "
        "at military events attended by the leader.",
        id="executed",
    ),
    pytest.param(
        "Dozens of party cadres detained in Pyongyang",
        "North Korean authorities have detained dozens of senior party officials in a sweeping "
        "crackdown on what the regime calls anti-party elements, sources said. Several of the "
        "officials were sent to prison camps.",
        id="detained",
    ),
    pytest.param(
        "Kim sacks army chief",
        "Kim Jong Un removed the chief of the general staff from his post at a meeting of the "
        "Central Military Commission, state media reported. The general had held the post for "
        "less than a year.",
        id="removed-from-post",
    ),
    pytest.param(
        "Former premier expelled from Workers' Party",
        "The Workers' Party of Korea expelled its former premier from the party for "
        "factionalism and abuse of power, KCNA said on Friday. He was stripped of all titles.",
        id="expelled-from-party",
    ),
    pytest.param(
        "Graft campaign topples another general",
        "China's anti-corruption campaign has brought down another senior general, the latest "
        "of dozens of military officers and officials investigated since it began. The defence "
        "ministry said he had been expelled from the Communist Party.",
        id="anti-corruption-campaign-against-elite",
    ),
]

SUMMIT = [
    pytest.param(
        "Kim and Putin hold talks in Vladivostok",
        "Kim Jong Un and Vladimir Putin held talks in Vladivostok on Thursday, their first "
        "meeting, the Kremlin said. The two leaders discussed the nuclear standoff and economic "
        "cooperation.",
        id="leaders-meeting",
    ),
    pytest.param(
        "Trump says he will meet Kim again",
        "President Donald Trump said on Tuesday he would meet North Korean leader Kim Jong Un "
        "for a second summit early next year. The location has not been decided, he told "
        "reporters at the White House.",
        id="announced-summit",
    ),
    pytest.param(
        "G7 leaders gather in Hiroshima",
        "Leaders of the Group of Seven opened their annual summit in Hiroshima on Friday, with "
        "Ukraine and China at the top of the agenda. The G7 leaders will also discuss North "
        "Korea's missile launches.",
        id="g7-leaders",
    ),
]

DEFECTION = [
    pytest.param(
        "North Korean diplomat defects to South",
        "A senior North Korean diplomat posted in Italy has defected to South Korea with his "
        "wife, lawmakers in Seoul said. He is the highest-ranking diplomat to defect in years.",
        id="defected-to-the-south",
    ),
    pytest.param(
        "Families flee North Korea by boat",
        "Two North Korean families fled to the South by boat across the Yellow Sea, the "
        "unification ministry said. They asked to stay in South Korea.",
        id="fled-to-the-south",
    ),
    pytest.param(
        "Russian pilot seeks asylum",
        "A Russian helicopter pilot flew his aircraft to Ukraine and sought asylum there, "
        "Ukraine's military intelligence said. He had planned his escape for months.",
        id="sought-asylum",
    ),
    pytest.param(
        "Soldier crosses DMZ into South Korea",
        "A North Korean soldier crossed the DMZ on Tuesday morning and was taken into custody "
        "by South Korean troops, the Joint Chiefs of Staff said. He expressed a wish to defect.",
        id="soldier-crossed-the-dmz",
    ),
    pytest.param(
        "Cuban pitcher defects during tournament",
        "A Cuban baseball pitcher defected to the United States during a tournament in Mexico, "
        "slipping away from his national team's hotel, officials said. He is the third Cuban "
        "player to defect this year, and has asked for political asylum.",
        id="athlete-leaving-his-country-is-no-club-change",
    ),
    pytest.param(
        "Defector returns to North Korea",
        "A North Korean defector who had lived in the South for three years has re-defected to "
        "the North, crossing the border near Gimpo, South Korean officials said. State media "
        "showed him praising the regime.",
        id="re-defection",
    ),
]

# A missile story whose only summit is a past one, in a sentence deep in the text.
MISSILE_STORY = (
    "North Korea fired a ballistic missile into the sea off its east coast on Wednesday, South "
    "Korea's military said. The missile flew about 600 kilometres before landing outside "
    "Japan's exclusive economic zone, officials in Tokyo said. Japan's prime minister condemned "
    "the launch as a threat to peace. North Korea has conducted dozens of tests this year, "
    "including of what it calls a hypersonic warhead and of solid-fuel engines. Analysts said "
    "the launch was timed to coincide with joint military drills by the United States and South "
    "Korea. Pyongyang has rejected calls for talks since the collapse of the 2019 summit between "
    "Kim Jong Un and Donald Trump in Hanoi."
)

EXCLUSIONS = [
    pytest.param(
        "Climber reaches summit of K2 without oxygen",
        "A Nepali climber reached the summit of K2 on Tuesday without supplemental oxygen, "
        "completing his quest to climb all 14 of the world's highest peaks. The expedition's "
        "leader said conditions were difficult.",
        id="mountain-summit",
    ),
    pytest.param(
        "The Purge returns with a new film",
        "The horror franchise The Purge returns to cinemas this summer with a sixth film, in "
        "which the government allows all crime for one night. The director said the movie is "
        "about a divided country.",
        id="purge-film",
    ),
    pytest.param(
        "Carmaker recalls vehicles over brake defect",
        "A carmaker is recalling 300,000 vehicles because of a defect in the braking system that "
        "can cause brakes to fail. Owners will be notified and dealers will replace the part.",
        id="product-defect",
    ),
    pytest.param(
        "Labour MP defects to the Conservatives",
        "A Labour MP has defected to the Conservative Party, saying her former party had lost "
        "its way. The defection leaves the government with a smaller majority in the Commons.",
        id="party-switch",
    ),
    pytest.param(
        "Striker defects to rival club",
        "The striker has defected to his club's fiercest rival in a record transfer, angering "
        "fans. He signed a five-year contract with the league champions on Monday.",
        id="footballer-changing-club",
    ),
    pytest.param(
        "Tech leaders gather at Web Summit",
        "More than 70,000 attendees, investors and startup founders gathered in Lisbon for the "
        "Web Summit technology conference. The prime minister opened the summit with a keynote "
        "on artificial intelligence.",
        id="business-summit",
    ),
    pytest.param(
        "Why cooperation beats defection",
        "In the prisoner's dilemma, each player can cooperate or defect. Game theory shows that "
        "in an iterated game a tit-for-tat strategy rewards cooperation and punishes defection.",
        id="game-theory-defection",
    ),
    pytest.param(
        "North Korea fires ballistic missile into sea",
        MISSILE_STORY,
        id="missile-story-with-past-summit-in-passing",
    ),
    pytest.param(
        "Lawmaker quits ruling party to join opposition",
        "A South Korean lawmaker defected from the ruling People Power Party to the Democratic "
        "Party on Monday, days before the by-election. He said the party had ignored voters in "
        "his constituency.",
        id="party-switch-in-seoul",
    ),
    pytest.param(
        "Inter-Korean military talks end without agreement",
        "Military officers from the two Koreas ended talks at the border village of Panmunjom "
        "without agreement on Thursday, the defence ministry said. The working-level talks were "
        "the first in two years.",
        id="talks-below-the-leaders",
    ),
    pytest.param(
        "Police detain protesters in Hong Kong",
        "Police in Hong Kong detained dozens of protesters on Sunday after clashes in the "
        "shopping district. Demonstrators had gathered to oppose a new security law.",
        id="detaining-protesters-is-no-purge-of-elites",
    ),
    pytest.param(
        "Executives ousted after accounting scandal",
        "The board ousted the chief executive and two directors after an accounting scandal, the "
        "company said. Shareholders welcomed the move.",
        id="company-ousting-executives",
    ),
    pytest.param(
        "North Korea marks party anniversary",
        "North Korea held a military parade in Pyongyang to mark the anniversary of the ruling "
        "Workers' Party, state media said. Leader Kim Jong Un gave a speech and met party "
        "officials. Analysts in Seoul said the parade showed new missiles. A defector now living "
        "in Seoul said the parade was meant for domestic audiences.",
        id="a-defector-quoted-in-passing",
    ),
    pytest.param(
        "Migrants seeking asylum wait at the border",
        "Thousands of migrants seeking asylum in the United States are waiting in shelters along "
        "the border, officials said. Immigration courts face a backlog of cases.",
        id="asylum-seekers-from-no-adversary",
    ),
]


@pytest.mark.parametrize(("title", "text"), PURGE)
def test_a_regime_removing_detaining_executing_or_expelling_elites_is_a_purge(
    classifier: Classifier, title: str, text: str
) -> None:
    assert "purge" in classifier.classify(title, text).labels


@pytest.mark.parametrize(("title", "text"), SUMMIT)
def test_a_held_or_announced_meeting_of_top_leaders_is_a_summit(
    classifier: Classifier, title: str, text: str
) -> None:
    assert "summit" in classifier.classify(title, text).labels


@pytest.mark.parametrize(("title", "text"), DEFECTION)
def test_leaving_for_an_adversary_seeking_asylum_or_going_back_is_a_defection(
    classifier: Classifier, title: str, text: str
) -> None:
    assert "defection" in classifier.classify(title, text).labels


@pytest.mark.parametrize(("title", "text"), EXCLUSIONS)
def test_other_senses_of_the_words_raise_no_label(
    classifier: Classifier, title: str, text: str
) -> None:
    assert classifier.classify(title, text).labels == ()


def test_a_story_can_be_about_a_purge_and_a_summit_at_once(classifier: Classifier) -> None:
    result = classifier.classify(
        "Kim executes envoy blamed for failed summit",
        "North Korea executed its special envoy and four foreign ministry officials, holding "
        "them responsible for the collapse of the summit between Kim Jong Un and Donald Trump, "
        "a newspaper in Seoul reported. The envoy had prepared the summit for months and met "
        "Trump's negotiators several times. The summit ended without an agreement.",
    )
    assert result.labels == ("purge", "summit")


def test_a_summit_in_passing_is_no_subject_but_in_the_title_and_lead_it_is(
    classifier: Classifier,
) -> None:
    result = classifier.classify("Pyongyang rejects talks", MISSILE_STORY)
    assert "summit" not in result.labels
    lead = "Kim Jong Un and Donald Trump met for a summit in Hanoi on Wednesday. "
    result = classifier.classify("Trump and Kim meet in Hanoi", lead + MISSILE_STORY)
    assert "summit" in result.labels
