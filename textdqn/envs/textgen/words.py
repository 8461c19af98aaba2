"""The concept word list of the shipped prompts, with each word's inflected forms.

Concepts are common nouns and verbs (CommonGen-style); `GLUE` are the function words,
adjectives and punctuation a sentence needs around them. Together they are the vocabulary
of the word-level tokenizer (with the prompts' own words), so every form listed here is
one token. Entries are written out by hand ("singular plural", "base -s -ing past"):
English inflection has too many exceptions for rules to spell them all right.
"""

from __future__ import annotations

from functools import cache

NOUNS = """
dog dogs | cat cats | ball balls | park parks | tree trees | car cars | road roads
house houses | door doors | window windows | table tables | chair chairs | book books
pen pens | letter letters | phone phones | computer computers | child children | man men
woman women | friend friends | teacher teachers | student students | doctor doctors
farmer farmers | bird birds | fish fish | horse horses | cow cows | sheep sheep
field fields | farm farms | river rivers | lake lakes | sea seas | beach beaches
boat boats | bridge bridges | mountain mountains | hill hills | forest forests
flower flowers | garden gardens | grass | rain | snow | sun | sky | cloud clouds
city cities | street streets | shop shops | market markets | school schools
kitchen kitchens | bed beds | room rooms | wall walls | floor floors | cup cups
plate plates | bowl bowls | knife knives | bread | apple apples | cake cakes | water
coffee | tea | milk | soup | pizza pizzas | egg eggs | hat hats | shirt shirts
shoe shoes | bag bags | box boxes | key keys | clock clocks | picture pictures
song songs | guitar guitars | piano pianos | game games | team teams | bike bikes
bus buses | train trains | plane planes | ticket tickets | camera cameras | music
dinner dinners | baby babies
"""

VERBS = """
run runs running ran | walk walks walking walked | jump jumps jumping jumped
throw throws throwing threw | catch catches catching caught | kick kicks kicking kicked
eat eats eating ate | drink drinks drinking drank | cook cooks cooking cooked
bake bakes baking baked | cut cuts cutting cut | read reads reading read
write writes writing wrote | draw draws drawing drew | paint paints painting painted
sing sings singing sang | dance dances dancing danced | play plays playing played
swim swims swimming swam | ride rides riding rode | drive drives driving drove
fly flies flying flew | climb climbs climbing climbed | sit sits sitting sat
stand stands standing stood | sleep sleeps sleeping slept | wash washes washing washed
clean cleans cleaning cleaned | open opens opening opened | close closes closing closed
carry carries carrying carried | push pushes pushing pushed | pull pulls pulling pulled
watch watches watching watched | look looks looking looked | listen listens listening listened
talk talks talking talked | laugh laughs laughing laughed | smile smiles smiling smiled
buy buys buying bought | sell sells selling sold | build builds building built
fix fixes fixing fixed | grow grows growing grew | plant plants planting planted
pick picks picking picked | hold holds holding held | wait waits waiting waited
teach teaches teaching taught | learn learns learning learned | chase chases chasing chased
feed feeds feeding fed | hug hugs hugging hugged | wear wears wearing wore
pack packs packing packed | fill fills filling filled | pour pours pouring poured
visit visits visiting visited | follow follows following followed
"""

GLUE = """
the a an and or but in on at with to of from by for under over near into through around
behind is are was were be has have had it its he she they we i you his her their my our
this that these those there here some many two three one big small little old new young
happy red green blue white black warm cold fast slowly quickly very all while after before
then . , !
"""


def _entries(table: str) -> list[tuple[str, ...]]:
    return [tuple(entry.split()) for line in table.splitlines() for entry in line.split("|") if entry.strip()]


@cache
def concept_words() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(nouns, verbs): the base forms the shipped prompts draw their concepts from."""
    return tuple(e[0] for e in _entries(NOUNS)), tuple(e[0] for e in _entries(VERBS))


@cache
def _listed_forms() -> dict[str, frozenset[str]]:
    return {e[0]: frozenset(e) for e in (*_entries(NOUNS), *_entries(VERBS))}


def vocabulary_words() -> list[str]:
    """Every word of the lists, each form included (the tokenizer's word list)."""
    words = {form for forms in _listed_forms().values() for form in forms}
    return sorted(words | set(GLUE.split()))


@cache
def word_forms(concept: str) -> frozenset[str]:
    """The words that count as using `concept`: the listed forms of a listed word, else the word
    and its regular inflections (-s/-es/-ies, -ing, -ed/-d, with a dropped e or a doubled
    final consonant), lowercased. Over-generating (e.g. "runned") costs nothing: only words
    that occur in a text are looked up."""
    word = concept.lower()
    if word in _listed_forms():
        return _listed_forms()[word]
    stems = {word, word[:-1] if word.endswith("e") else word, word + word[-1:]}
    forms = {word, word + "s", word + "es", word + "d"}
    forms |= {stem + suffix for stem in stems for suffix in ("ing", "ed")}
    if word.endswith("y"):
        forms |= {word[:-1] + "ies", word[:-1] + "ied"}
    return frozenset(forms)
