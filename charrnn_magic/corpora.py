"""Built-in texts to train on, with nothing to download.

``%charrnn_train --corpus NAME`` trains on one of these; ``%charrnn_train --list-corpora``
lists them. From Python::

    >>> from charrnn_magic.corpora import CORPORA, load_corpus
    >>> sorted(CORPORA)
    ['pydoc', 'verse']
    >>> text = load_corpus("verse")

``verse``
    *The Lamplighter's Almanac*, twelve short rhymed poems (one per month) written for this
    project, so it can be used and redistributed freely. About 8,000 characters: a model learns
    its words and rhymes in a minute or two. This is the default corpus.
``pydoc``
    The English reference documentation that ships inside CPython itself
    (``pydoc_data.topics``, what ``help("assert")`` shows), about 460,000 characters of
    technical prose and code. Its exact content depends on the Python version.
"""
from __future__ import annotations

__all__ = ["CORPORA", "DEFAULT_CORPUS", "load_corpus"]

#: The corpus used when none is named (``python -m charrnn_magic``, demos).
DEFAULT_CORPUS = "verse"

#: Corpus name -> one-line description, in display order.
CORPORA: dict[str, str] = {
    "verse": "The Lamplighter's Almanac: twelve short original poems written for this project "
             "(~8k characters; the default)",
    "pydoc": "the English reference documentation shipped inside CPython (pydoc_data.topics, "
             "~460k characters)",
}


def load_corpus(name: str) -> str:
    """The text of the built-in corpus ``name``; ``ValueError`` naming the known ones otherwise."""
    key = name.strip().lower() if isinstance(name, str) else name
    if key == "verse":
        return _VERSE
    if key == "pydoc":
        return _pydoc_text()
    raise ValueError(f"unknown corpus {name!r}: the built-in corpora are {', '.join(CORPORA)}")


def _pydoc_text() -> str:
    # Imported here: it is a 500 kB module and most sessions never need it.
    try:
        from pydoc_data.topics import topics
    except ImportError as exc:  # some distributions strip it out of their Python
        raise ValueError(
            "the 'pydoc' corpus needs CPython's pydoc_data package, which this Python does not "
            "have; use --corpus verse or --file PATH"
        ) from exc
    # Sorted by topic name so that the same Python always gives the same text.
    return "\n\n".join(topics[key].strip("\n") for key in sorted(topics)) + "\n"


# Written for charrnn_magic; released with the project under its MIT license.
_VERSE = """\
THE LAMPLIGHTER'S ALMANAC

I. JANUARY

The lamplighter wakes when the frost is still thin,
he laces his boots and he lets the cold in;
the street is a ribbon of silver and grey
and the lamps are asleep at the end of the day.
He carries a ladder, he carries a flame,
he calls every lamp by its own little name:
"Good evening, Old Crooked, good evening, the Tall,
good evening, the Lantern that leans on the wall."
The snow on the cobbles is patient and deep,
it keeps all the footprints the passers-by keep,
and one after one, as he climbs and he climbs,
the lamps answer back in their flickering rhymes.

II. FEBRUARY

The wind in the chimneys is practising scales,
it hums in the gutters and whistles through rails;
the baker's back window is yellow with bread,
the cat on the doorstep is curled like a thread.
The lamplighter stops at the bridge on his way
to count all the barges that sleep in the bay:
there is one with a rooster, and one with a bell,
and one that is painted the green of a shell.
He lights the last lamp at the end of the pier
and says to the water, "The spring will be here,"
and the water says nothing, the way water does,
but it shines a bit brighter than ever it was.

III. MARCH

In March the rain comes with its pockets of seeds,
it drums on the rooftops and rattles the reeds;
the gutters are singing, the puddles are wide,
and the sparrows hold meetings on every side.
The lamplighter's coat is as wet as a mop,
his ladder goes squeaking from bottom to top,
but under the brim of his old woollen hat
the matches stay dry, and he's certain of that.
So the lamps of the market, the lamps of the lane,
wear halos of gold in the fine silver rain,
and the children who splash on their way to their tea
say the street is a river that runs to the sea.

IV. APRIL

The evenings grow longer, the blackbirds grow bold,
the blossom comes out on the branches of old,
and the lamplighter, climbing a little bit late,
finds a nest in the lamp by the churchyard gate.
Three eggs in the lantern, as blue as the sky,
and a small worried mother who watches him by.
"I shall not light you, lantern," he says with a bow,
"you are somebody's house, and a nursery now."
So the lane by the church has one lamp that is dark,
and the people who pass it walk slow, and remark
that the dark is a kindness, the kind that is rare,
and they lower their voices whenever they're there.

V. MAY

The river is full and the meadows are loud,
the swifts are returning, a scribble of cloud;
the market sells radishes, ribbons and rope,
and a man with a trumpet sells bottles of hope.
The lamplighter buys an old map of the town
with the streets written sideways and half upside down,
and he finds in the corner, in ink that is pale,
a lamp on a hill at the top of a trail.
So up the steep hill, with his ladder and light,
he goes in the blue of the end of the night,
and he lights it, and looks, and it seems to him then
that the stars had come down to the town once again.

VI. JUNE

In June there is hardly a darkness at all,
the light lingers late on the top of the wall,
and the lamplighter sits on the step of the inn
with a cup of cold tea and a sandwich of tin.
(It was meant to be tuna; the baker was wrong,
and he laughed about that as he hummed a new song.)
The moths come to visit, the bats come to dine,
the lamps are all waiting, all twelve in a line,
and he lights them at last when the sky has turned deep,
and he whispers, "Now, lanterns, keep watch while they sleep,"
and they burn like a promise, they burn like a vow,
from the end of the harbour to the top of the brow.

VII. JULY

The heat sits like honey on shutters and stone,
the dogs find the shadows and leave them alone;
the fountain is tired and the pigeons are too,
and the sky is a bowl of a wonderful blue.
The lamplighter waits for the cool of the night,
he polishes glasses till every one's bright,
and he hums to himself that a lamp is a sun
that is small enough, friendly enough, for everyone.
When the stars come out over the hills of the west,
he lights up the square, which he thinks is the best,
and the dancers come out, and the fiddles begin,
and the square is a lantern with all of us in.

VIII. AUGUST

A storm in the evening, a crack and a roar,
the rain running sideways, the wind at the door;
the lamps on the quay are blown out one by one,
and the boats are still out, and the day is not done.
The lamplighter runs with his coat on his head,
his ladder, his matches, his lantern of red,
and he lights them again, and again, and again,
through the wind and the water, the thunder, the rain.
And out on the dark, where the waves are so tall,
the fishermen see them, the lamps on the wall,
and they turn to the harbour, and steer for the light,
and they all come home safely to supper that night.

IX. SEPTEMBER

The apples are heavy, the wasps are about,
the school bell is ringing the summer days out;
the lamplighter's niece has come down from the farm
with a satchel of pencils and a cast on her arm.
"I will teach you the lamps," says the lamplighter, "all:
there's Old Crooked, the Lantern, the Short and the Tall,
and the one by the church, with the nest, as you know,
and the one on the hill where the wild grasses grow."
She writes all their names in a notebook of blue,
with a drawing of each, and the date, and the view,
and she says, "When I'm older I'll light them as well,"
and the lamps, if they heard, never said, never tell.

X. OCTOBER

The leaves come down golden, the leaves come down brown,
they gather like letters all over the town;
the wind is a postman who cannot quite read
and delivers them all with remarkable speed.
The lamplighter's ladder is covered in leaves,
there are leaves in his pockets and leaves up his sleeves,
and he laughs as he climbs, and he shakes like a tree,
and the leaves fly around him as bright as can be.
The lamps in October are orange and slow,
they burn like the pumpkins that sit in a row,
and the evenings come early, and nobody minds,
for the kettles are singing behind the drawn blinds.

XI. NOVEMBER

The fog rolls in softly from over the sea,
it swallows the harbour, the church and the tree;
the street is a whisper, the square is a sigh,
and the lamps are like moons in a cotton-wool sky.
The lamplighter walks with his hand on the wall,
he counts every doorway, he knows them all,
and he lights every lamp in the thick of the grey,
so the people can find where they left the day.
A stranger comes by with a case and a map,
and a very wet dog in a very wet cap,
and the lamplighter walks them, by lantern and lane,
to the door of the inn, and the warm again.

XII. DECEMBER

The year is an old coat, the pockets worn through,
the buttons are loose and the lining is new;
the snow is returning, the river is slow,
and the lamps on the bridge make a road in the snow.
The lamplighter climbs for the last time this year,
with his niece at the bottom, who holds the ladder near,
and she hands up the matches, and he lights the flame,
and he calls the last lamp by its own little name.
"Good night, Old Crooked, good night, the Tall,
good night, the Lantern that leans on the wall,
good night, little nest in the lamp by the gate:
sleep well, all my lanterns. The spring will not wait."

THE LAMPLIGHTER'S RULES

Light the low lamps first, and the high lamps last.
Never hurry on a ladder; the night is patient.
Keep the matches dry and the glass clean.
Learn every lamp by name, and every name by heart.
If a bird has made a home in a lamp, leave it dark.
If a stranger is lost, walk with them.
If the wind blows a lamp out, light it again.
If the wind blows it out again, light it again.
When the fog comes, count the doorways.
When the storm comes, go to the harbour first.
A lamp is a small sun that somebody carries.
A street is a sentence, and the lamps are its full stops.
Teach the lamps to someone younger than you.
At the end of the year, say good night to each one.
"""
