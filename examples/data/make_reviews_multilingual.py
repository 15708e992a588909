"""Writes reviews_multilingual.csv: 240 labelled short reviews (0 negative,
1 positive) of hotels, food and gadgets, made from templates, with accents,
CJK and Hangul, emoji, capitals, zero-width spaces, soft hyphens and long
texts (past 128 tokens): the texts where an app file's tokenizer and the
reference WordPiece may part. Run from this folder."""

import csv, random
rng = random.Random(0)
subjects = ["The hotel in São Paulo", "Our café au lait", "This crème brûlée", "The jalapeño burger",
    "The app update", "My new headphones", "The Zürich tram", "The ryokan near 京都",
    "The 東京 hostel", "The ramen in 札幌", "The 서울 guesthouse", "The Café Müller",
    "The piñata party kit", "The smartwatch", "The delivery from Málaga", "The résumé template",
    "The naïve-art museum", "The Übergröße jacket", "The bakery's pain au chocolat", "The Kraków walking tour",
    "This phone charger", "The laptop stand", "The fiancée's ring box", "The espresso machine", "The Łódź hotel"]
pos = ["was absolutely wonderful", "exceeded every expectation", "is great value and works perfectly",
    "made our trip, highly recommended", "was delicious and the staff were lovely", "is fast, reliable and beautiful",
    "was clean, quiet and comfortable", "is the best purchase I made this year", "was a delight from start to finish"]
neg = ["was a complete disappointment", "broke after two days", "is overpriced and slow",
    "was dirty and the staff were rude", "tasted stale and cold", "crashes constantly and drains the battery",
    "was noisy, cramped and smelled bad", "is the worst purchase I made this year", "arrived late and damaged"]
pos_emoji = ["😀", "👍", "⭐⭐⭐⭐⭐", "❤️", "🎉", ""]
neg_emoji = ["😡", "👎", "💔", "⭐", "🤮", ""]
extras_pos = ["Très bien!", "¡Muy bueno!", "すばらしい", "최고", "Wunderbar.", "Grazie mille.", ""]
extras_neg = ["Très décevant.", "¡Qué desastre!", "最悪", "별로", "Schrecklich.", "Mai più.", ""]
filler = ("We stayed for several days and tried almost everything on offer, from the breakfast buffet "
          "to the late-night snacks, the rooftop terrace and the small garden behind the main building, "
          "and we talked with other guests about their experiences as well. ")
rows = []
for i in range(240):
    label = i % 2
    s = rng.choice(subjects)
    text = f"{s} {rng.choice(pos if label else neg)}. {rng.choice(extras_pos if label else extras_neg)} {rng.choice(pos_emoji if label else neg_emoji)}".strip()
    kind = i % 8
    if kind == 1:
        text = text.upper()  # capitals, accented ones included
    elif kind == 2:
        text = text.replace(" ", "\u200b ", 1)  # a zero-width space
    elif kind == 3:
        text = text.replace("e", "e\u00ad", 1)  # a soft hyphen
    elif kind == 4:
        text = filler * rng.randint(2, 4) + text  # long: the verdict past 128 tokens
    elif kind == 5:
        text = text + " " + filler * rng.randint(1, 3)  # long: the verdict first
    rows.append((text, label))
with open("reviews_multilingual.csv", "w", encoding="utf-8", newline="") as f:
    w = csv.writer(f); w.writerow(["text", "label"]); w.writerows(rows)
print(len(rows))
