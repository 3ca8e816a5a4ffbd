#!/usr/bin/env python3
"""Deterministic generator of realistic CSV tables for ReedBase tests and benchmarks.

Writes a header line and ROWS records of one KIND of table:

  users     id|name|email|age|country|city|created|score|active|bio
  orders    id|user_id|product|quantity|price|status|ordered|note
  products  id|sku|title|category|price|stock|updated|description

ids are 1..ROWS in order. The free-text column (bio, note, description) is
sometimes empty and sometimes holds the delimiter, double quotes, a comma or
(rarely) an embedded newline; such fields are quoted RFC 4180 style. Only
fields that contain the delimiter, a double quote, CR or LF are quoted.
Lines end in "\\n", and the file ends with one. The same arguments and seed
always give byte-identical output.
"""

import argparse
import os
import sys
import unicodedata
from random import Random

# --------------------------------------------------------------------------
# Word lists

FIRST_NAMES = (
    "James Mary John Linda Robert Emma Michael Olivia David Sophia William Mia "
    "Daniel Ava Thomas Lucas Anna Paul Laura Mark Julia Peter Sarah Jan Eva "
    "Max Lena Tom Nina Leo Ella Noah Lily Ben Grace Sam Chloe Adam Hannah Alex "
    "Maria Carlos Luis Ana Pedro Sofia Marco Giulia Pierre Camille Hugo Lea "
    "Lars Ingrid Sven Astrid Piotr Kasia Ivan Olga Yuki Hiro Mei Wei Raj Priya "
    "Omar Aisha Ali Fatima Kofi Ama Liam Nora Ethan Zoe Jack Ruby Finn Isla "
    "Zoë José Łukasz Søren Björn Chloé Renée Zoltán Agnieszka Jürgen Åsa Inés"
).split()

LAST_NAMES = (
    "Smith Johnson Brown Jones Miller Davis Wilson Moore Taylor Anderson "
    "Thomas Jackson White Harris Martin Clark Lewis Walker Hall Young King "
    "Wright Scott Green Baker Adams Nelson Hill Campbell Mitchell Roberts "
    "Carter Schmidt Fischer Weber Wagner Becker Hoffmann Koch Richter Klein "
    "Wolf Rossi Russo Ferrari Bianchi Romano Dubois Martin Bernard Petit "
    "Leroy Moreau Silva Santos Costa Pereira Lopez Gonzalez Perez Sanchez "
    "Novak Horvat Kowalski Nowak Jensen Hansen Larsen Berg Lindqvist Kim Lee "
    "Park Chen Wang Li Zhang Tanaka Sato Suzuki Patel Singh Khan Okafor Mensah "
    "Nguyễn Müller García Dvořák Øverby Żak Çelik Sørensen Núñez Ångström"
).split()

EMAIL_DOMAINS = (
    "gmail.com", "gmx.de", "yahoo.com", "web.de", "mail.com", "proton.me",
    "outlook.com", "icloud.com", "posteo.de", "aol.com", "example.org",
)

# (country code, cities); weighted towards a few countries.
COUNTRIES = (
    ("DE", ("Berlin", "Hamburg", "München", "Köln", "Leipzig", "Bonn", "Essen")),
    ("US", ("New York", "Chicago", "Austin", "Seattle", "Boston", "Denver")),
    ("GB", ("London", "Leeds", "Bristol", "Glasgow", "York")),
    ("FR", ("Paris", "Lyon", "Nice", "Nantes", "Lille")),
    ("ES", ("Madrid", "Sevilla", "Málaga", "Valencia", "Bilbao")),
    ("IT", ("Roma", "Milano", "Torino", "Napoli", "Bologna")),
    ("PL", ("Warszawa", "Kraków", "Łódź", "Gdańsk", "Poznań")),
    ("DK", ("København", "Aarhus", "Odense")),
    ("SE", ("Stockholm", "Göteborg", "Malmö", "Uppsala")),
    ("NL", ("Utrecht", "Leiden", "Delft", "Haarlem")),
    ("VN", ("Hà Nội", "Huế", "Đà Nẵng")),
    ("JP", ("Tokyo", "Osaka", "Kyoto", "Sapporo")),
    ("BR", ("São Paulo", "Recife", "Curitiba")),
    ("CA", ("Toronto", "Montréal", "Ottawa")),
    ("AT", ("Wien", "Graz", "Linz")),
    ("CH", ("Zürich", "Bern", "Basel")),
)
COUNTRY_WEIGHTS = (18, 16, 10, 8, 6, 6, 5, 3, 4, 4, 3, 4, 3, 4, 3, 3)

WORDS = (
    "coffee hiking music travel code books cats dogs chess jazz film photo "
    "art cooking running tea games garden yoga math science history cycling "
    "climbing football design maps rust linux data wine bread pizza sushi "
    "poetry theatre piano guitar rain snow sea mountains night city quiet "
    "loves likes enjoys into fan of new old big small good best daily always "
    "and with the a my our at for in on from to"
).split()

BIO_OPENERS = (
    "", "", "", "", "", "I like", "Loves", "Into", "Fan of", "Just",
    "Dev who likes", "Ask me about", "Here for", "Ex-teacher:", "Student:",
)

NOTE_PHRASES = (
    "leave at door", "gift wrap please", "call before delivery", "fragile",
    "no invoice in box", "deliver after 6pm", "ring twice", "side entrance",
    "back order ok", "express", "reorder", "office address", "neighbour ok",
)

PRODUCTS = (
    "Coffee Mug", "Desk Lamp", "USB Cable", "Notebook", "Water Bottle",
    "Backpack", "Headphones", "Keyboard", "Mouse", "Phone Case", "T-Shirt",
    "Sneakers", "Tea Kettle", "Yoga Mat", "Board Game", "Sunglasses",
    "Wall Clock", "Plant Pot", "Pillow", "Blanket", "Umbrella", "Wallet",
    "Monitor Stand", "Webcam", "Charger", "Frying Pan", "Knife Set",
)
PRODUCT_PRICES = (
    9.90, 34.50, 7.99, 4.50, 14.95, 59.00, 89.99, 49.90, 24.99, 12.99, 19.90,
    79.95, 29.99, 22.00, 34.99, 45.00, 27.50, 11.90, 18.99, 39.90, 16.50,
    25.00, 32.99, 54.90, 21.99, 42.00, 69.00,
)

STATUSES = ("pending", "paid", "shipped", "cancelled")
STATUS_WEIGHTS = (15, 30, 48, 7)

CATEGORIES = (
    ("Kitchen", "KIT", ("Kettle", "Pan", "Knife", "Mug", "Bowl", "Grater")),
    ("Office", "OFF", ("Lamp", "Stapler", "Notebook", "Pen Set", "Chair")),
    ("Electronics", "ELE", ("Cable", "Charger", "Speaker", "Webcam", "Mouse")),
    ("Garden", "GAR", ("Hose", "Shovel", "Planter", "Rake", "Gloves")),
    ("Sports", "SPO", ("Yoga Mat", "Bottle", "Ball", "Rope", "Band")),
    ("Clothing", "CLO", ("T-Shirt", "Hoodie", "Scarf", "Socks", "Cap")),
    ("Toys", "TOY", ("Puzzle", "Kite", "Robot", "Blocks", "Car")),
    ("Home", "HOM", ("Pillow", "Blanket", "Clock", "Candle", "Rug")),
)
ADJECTIVES = (
    "Compact", "Classic", "Deluxe", "Eco", "Mini", "Pro", "Smart", "Soft",
    "Rustic", "Modern", "Travel", "Premium", "Basic", "Nordic", "Retro",
)
MATERIALS = (
    "Steel", "Oak", "Bamboo", "Cotton", "Ceramic", "Glass", "Wool", "Linen",
    "Aluminium", "Leather", "Walnut", "Cork", "Silicone", "Crème",
)
DESC_PHRASES = (
    "durable", "dishwasher safe", "hand made", "lightweight", "2 year warranty",
    "easy to clean", "limited edition", "recycled material", "fits most sizes",
    "ships in 2 days", "best seller", "new model", "gift idea", "matte finish",
)
QUOTED = ("best ever", "as seen on TV", "like new", "premium", "vintage",
          "the one", "works", "ok", "XL", "fast")

# --------------------------------------------------------------------------


def ascii_fold(s: str) -> str:
    """ASCII form of a name for e-mail addresses: Łukasz -> lukasz."""
    s = s.translate(str.maketrans({"ł": "l", "Ł": "L", "ø": "o", "Ø": "O",
                                   "đ": "d", "Đ": "D", "ß": "ss", "æ": "ae"}))
    s = unicodedata.normalize("NFKD", s)
    return "".join(c for c in s if not unicodedata.combining(c)).lower()


def weighted_picker(rng, items, weights):
    """Fast deterministic weighted choice: a lookup table of size sum(weights)."""
    table = []
    for item, w in zip(items, weights):
        table.extend([item] * w)
    n = len(table)
    r = rng.random
    return lambda: table[int(r() * n)]


def iso_days(start_year: int, end_year: int):
    """ISO dates of every day from Jan 1 start_year to Dec 31 end_year."""
    from datetime import date, timedelta
    d, end = date(start_year, 1, 1), date(end_year, 12, 31)
    out = []
    while d <= end:
        out.append(d.isoformat())
        d += timedelta(days=1)
    return out


DATES = iso_days(2015, 2026)


class Text:
    """Free-text field generator that mixes in the characters CSV must quote."""

    def __init__(self, rng: Random, delimiter: str, empty: float,
                 base):
        self.r = rng.random
        self.delim = delimiter
        self.empty = empty
        self.base = base  # callable returning plain text
        # Rates per non-empty field, so that ~5% / ~0.5% of *rows* get them.
        self.p_special = min(1.0, 0.05 / (1.0 - empty))
        self.p_newline = min(1.0, 0.005 / (1.0 - empty))

    def __call__(self) -> str:
        r = self.r
        if r() < self.empty:
            return ""
        s = self.base()
        w = WORDS
        nw = len(w)
        p = self.p_special
        # ~5% of rows each: the delimiter, double quotes, a comma;
        # ~0.5% an embedded newline.
        if r() < p:
            s = f"{s} {self.delim} {w[int(r() * nw)]}"
        if r() < p:
            s = f'{s} "{QUOTED[int(r() * len(QUOTED))]}"'
        if r() < p:
            s = f"{s}, {w[int(r() * nw)]}"
        if r() < self.p_newline:
            s = f"{s}\n{w[int(r() * nw)]} {w[int(r() * nw)]}"
        return s


def make_quote(delimiter: str):
    specials = (delimiter, '"', "\n", "\r")

    def q(field: str) -> str:
        for c in specials:
            if c in field:
                return '"' + field.replace('"', '""') + '"'
        return field
    return q


def row_writer(delimiter: str, ncols: int):
    """Joins a record, quoting only where needed (fast path for clean rows)."""
    q = make_quote(delimiter)
    join = delimiter.join
    need = ncols - 1

    def line(fields) -> str:
        s = join(fields)
        if s.count(delimiter) == need and '"' not in s and "\n" not in s \
                and "\r" not in s:
            return s
        return join([q(f) for f in fields])
    return line


# --------------------------------------------------------------------------
# Tables


def gen_users(rng: Random, rows: int, delim: str, _args):
    yield ("id", "name", "email", "age", "country", "city", "created",
           "score", "active", "bio")
    r = rng.random
    firsts = [(n, ascii_fold(n)) for n in FIRST_NAMES]
    lasts = [(n, ascii_fold(n)) for n in LAST_NAMES]
    nf, nl, nd = len(firsts), len(lasts), len(EMAIL_DOMAINS)
    country = weighted_picker(rng, COUNTRIES, COUNTRY_WEIGHTS)
    nd_dates = len(DATES)
    seen = set()

    def bio_base():
        op = BIO_OPENERS[int(r() * len(BIO_OPENERS))]
        k = 1 + int(r() * r() * 3)  # mostly one or two words
        words = " ".join(WORDS[int(r() * 40)] for _ in range(k))
        return f"{op} {words}" if op else words.capitalize()

    bio = Text(rng, delim, 0.15, bio_base)

    for i in range(1, rows + 1):
        fn, fa = firsts[int(r() * nf)]
        ln, la = lasts[int(r() * nl)]
        dom = EMAIL_DOMAINS[int(r() * nd)]
        style = r()
        if style < 0.4:
            local = f"{fa}.{la}"
        elif style < 0.7:
            local = f"{fa[0]}{la}"
        else:
            local = f"{fa}{la[0]}"
        num = int(r() * 100)
        email = f"{local}{num}@{dom}"
        while email in seen:  # widen the number until the address is unique
            num = int(r() * 100000)
            email = f"{local}{num}@{dom}"
        seen.add(email)
        code, cities = country()
        yield (
            str(i), f"{fn} {ln}", email, str(18 + int(r() * 73)), code,
            cities[int(r() * len(cities))], DATES[int(r() * nd_dates)],
            f"{r() * 100:.2f}", "true" if r() < 0.8 else "false", bio(),
        )


def gen_orders(rng: Random, rows: int, delim: str, args):
    yield ("id", "user_id", "product", "quantity", "price", "status",
           "ordered", "note")
    r = rng.random
    users = args.users
    status = weighted_picker(rng, STATUSES, STATUS_WEIGHTS)
    qty = weighted_picker(rng, ("1", "2", "3", "4", "5", "10"),
                          (55, 20, 10, 6, 5, 4))
    np_, nn, nd_dates = len(PRODUCTS), len(NOTE_PHRASES), len(DATES)

    def note_base():
        s = NOTE_PHRASES[int(r() * nn)]
        return s.capitalize() if r() < 0.5 else s

    note = Text(rng, delim, 0.5, note_base)

    for i in range(1, rows + 1):
        p = int(r() * np_)
        q = qty()
        price = PRODUCT_PRICES[p] * int(q)
        if r() < 0.2:  # discount
            price *= 0.9
        yield (
            str(i), str(1 + int(r() * users)), PRODUCTS[p], q,
            f"{price:.2f}", status(), DATES[int(r() * nd_dates)], note(),
        )


def gen_products(rng: Random, rows: int, delim: str, _args):
    yield ("id", "sku", "title", "category", "price", "stock", "updated",
           "description")
    r = rng.random
    nc, na, nm = len(CATEGORIES), len(ADJECTIVES), len(MATERIALS)
    nds, nd_dates = len(DESC_PHRASES), len(DATES)

    def desc_base():
        k = 1 + int(r() * 3)
        return ". ".join(DESC_PHRASES[int(r() * nds)].capitalize()
                         for _ in range(k)) + "."

    desc = Text(rng, delim, 0.1, desc_base)

    for i in range(1, rows + 1):
        cat, prefix, nouns = CATEGORIES[int(r() * nc)]
        # Unique: three random digits, then the id zero-padded to 5+ digits.
        sku = f"{prefix}-{100 + int(r() * 900)}{i:05d}"
        title = (f"{ADJECTIVES[int(r() * na)]} {MATERIALS[int(r() * nm)]} "
                 f"{nouns[int(r() * len(nouns))]}")
        price = 2 + r() * r() * 300
        stock = 0 if r() < 0.08 else int(r() * 500)
        yield (
            str(i), sku, title, cat, f"{price:.2f}", str(stock),
            DATES[int(r() * nd_dates)], desc(),
        )


KINDS = {"users": gen_users, "orders": gen_orders, "products": gen_products}

# --------------------------------------------------------------------------


def parse_delimiter(s: str) -> str:
    if s in ("\\t", "tab", "TAB"):
        return "\t"
    if len(s) != 1 or s in ('"', "\n", "\r"):
        raise argparse.ArgumentTypeError(
            "must be a single character other than '\"', CR or LF "
            "(use 'tab' or '\\t' for a tab)")
    return s


def non_negative(s: str) -> int:
    n = int(s)
    if n < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return n


def positive(s: str) -> int:
    n = int(s)
    if n < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return n


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="gen_table.py",
        description="Generate a deterministic, realistic CSV table "
                    "(RFC 4180 quoting, header line, ids 1..ROWS).",
        epilog="kinds:\n"
               "  users     id|name|email|age|country|city|created|score|"
               "active|bio\n"
               "  orders    id|user_id|product|quantity|price|status|ordered|"
               "note\n"
               "  products  id|sku|title|category|price|stock|updated|"
               "description\n\n"
               "Same arguments and seed => byte-identical output.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kind", metavar="KIND", choices=sorted(KINDS),
                   help="table kind: users, orders or products")
    p.add_argument("rows", metavar="ROWS", type=non_negative,
                   help="number of records (ids 1..ROWS)")
    p.add_argument("--seed", type=int, default=42,
                   help="random seed (default: 42)")
    p.add_argument("--delimiter", type=parse_delimiter, default="|",
                   metavar="D", help="field delimiter, one character "
                                     "(default: '|')")
    p.add_argument("--users", type=positive, default=10000, metavar="N",
                   help="orders only: user_id values are in 1..N "
                        "(default: 10000)")
    p.add_argument("--out", metavar="FILE",
                   help="write to FILE instead of stdout")
    args = p.parse_args(argv)

    rng = Random(args.seed)
    gen = KINDS[args.kind](rng, args.rows, args.delimiter, args)
    header = next(gen)
    line = row_writer(args.delimiter, len(header))

    out = open(args.out, "wb") if args.out else sys.stdout.buffer
    try:
        buf = [line(header)]
        for rec in gen:
            buf.append(line(rec))
            if len(buf) >= 8192:
                buf.append("")
                out.write("\n".join(buf).encode("utf-8"))
                buf = []
        buf.append("")
        out.write("\n".join(buf).encode("utf-8"))
        out.flush()
    except BrokenPipeError:
        # e.g. `gen_table.py users 100000 | head`: stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    finally:
        if args.out:
            out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
