# ruff: noqa: E501
"""Vocabulary of the synthetic generator: per category, subjects with a short correct
explanation, contexts an asker adds, and follow-up sentences for the answer.

Written for qaflow; no external data. Every subject is a noun phrase that fits every title
template, and no two subjects are equal, which keeps titles of different categories apart.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Topic:
    subjects: tuple[tuple[str, str], ...]  # (noun phrase, one- or two-sentence explanation)
    contexts: tuple[str, ...]
    follow_ups: tuple[str, ...]


TITLES: tuple[str, ...] = (
    "Can someone explain {s} {c}?",
    "How does {s} work, {c}?",
    "What's the deal with {s} {c}?",
    "Question about {s} {c}",
    "I don't get {s} {c}, help?",
    "Is there a simple explanation of {s} {c}?",
    "{S}: what should I know {c}?",
    "Looking for a clear answer on {s} {c}",
)

CONTENTS: tuple[str, ...] = (
    "I have read a few articles about {s} but they contradict each other. What is the real story?",
    "Asking {c}. Please keep it simple, thanks!",
    "Some background:\n- I looked it up online\n- my friends all say different things\nSo what is the truth about {s}?",
    "My teacher said \"it's complicated\", which didn't help. Can anyone explain {s}?",
    "Not sure this is the right category, but here goes: {s}, {c}. Any advice is welcome.",
    "I'm writing from a café and my friend and I are arguing about {s}. Who is right?",
)

# fmt: off
TOPICS: dict[int, Topic] = {
    1: Topic(
        subjects=(
            ("the origin of Halloween", "Halloween grew out of Samhain, a Celtic festival marking the end of the harvest, later blended with the Christian All Hallows' Eve."),
            ("the custom of shaking hands", "Shaking hands is thought to have begun as a way to show an open hand holding no weapon. Today it is mainly a sign of greeting and trust."),
            ("the meaning of Ramadan", "Ramadan is the ninth month of the Islamic calendar, when Muslims fast from dawn to sunset. It commemorates the first revelation of the Quran."),
            ("candles on birthday cakes", "Putting candles on birthday cakes is usually traced to German Kinderfest celebrations in the 18th century. Blowing them out while making a wish came later."),
            ("the fear of the number 13", "Fear of the number 13 is called triskaidekaphobia. It is often linked to the thirteen people at the Last Supper, though the roots are older and unclear."),
            ("the date of Chinese New Year", "Chinese New Year follows the lunisolar calendar, so it falls on the second new moon after the winter solstice, between January 21 and February 20."),
            ("wearing a wedding ring on the fourth finger", "The custom comes from the old belief that a vein ran from the fourth finger straight to the heart. The Romans called it the vena amoris."),
            ("the Day of the Dead", "The Day of the Dead, on November 1 and 2, is a Mexican celebration honouring relatives who have died. Families build altars with photos, marigolds and favourite foods."),
            ("tipping customs in different countries", "Tipping norms vary widely: in the US around 15 to 20 percent is expected in restaurants, while in Japan tipping is uncommon and can even seem odd."),
            ("the origin of April Fools' Day", "Nobody knows for sure where April Fools' Day began. A popular theory links it to France moving New Year from spring to January 1 in the 16th century."),
            ("the meaning of the word namaste", "Namaste is a respectful Hindi and Sanskrit greeting that roughly means 'I bow to you'. It is usually said with palms pressed together near the chest."),
            ("the tradition of New Year's resolutions", "New Year's resolutions go back at least to the Babylonians, who made promises to their gods at the start of the year. Today they are mostly personal goals."),
        ),
        contexts=("for a class presentation", "as a curious foreigner", "for my kids", "in a few sentences", "for a trivia night", "out of curiosity", "for a blog post", "before a family party"),
        follow_ups=(
            "Customs change from region to region, so you may find local variations.",
            "A good encyclopedia entry on the topic gives more detail and sources.",
            "Many of these traditions mix older folk practice with later religious meaning.",
            "Asking older relatives can also be a nice way to learn how your family does it.",
        ),
    ),
    2: Topic(
        subjects=(
            ("the greenhouse effect", "Greenhouse gases like carbon dioxide and water vapour let sunlight in but absorb the heat the ground radiates back, which keeps the planet warmer."),
            ("why the sky is blue", "Sunlight scatters off the molecules in the air, and shorter blue wavelengths scatter much more than red ones. That scattered blue light reaches our eyes from every direction."),
            ("photosynthesis", "Photosynthesis is how plants use light energy to turn carbon dioxide and water into glucose. Oxygen is released as a by-product."),
            ("prime numbers", "A prime number is a whole number greater than 1 whose only divisors are 1 and itself, like 2, 3, 5, 7 and 11. There are infinitely many of them."),
            ("the Pythagorean theorem", "In a right triangle, the square of the hypotenuse equals the sum of the squares of the other two sides, a squared plus b squared equals c squared."),
            ("why ice floats", "Water expands when it freezes because its molecules lock into an open crystal lattice. Ice is therefore less dense than liquid water and floats."),
            ("ocean tides", "Tides are caused mostly by the Moon's gravity pulling on the oceans, with a smaller effect from the Sun. Most coasts get two high tides and two low tides a day."),
            ("black holes", "A black hole is a region where gravity is so strong that nothing, not even light, can escape once it crosses the event horizon. Many form when massive stars collapse."),
            ("the difference between mass and weight", "Mass is the amount of matter in an object and is the same everywhere. Weight is the force of gravity on that mass, so it changes on the Moon."),
            ("the cause of the seasons", "Seasons happen because Earth's axis is tilted about 23.5 degrees. The hemisphere tilted toward the Sun gets more direct sunlight and longer days, which makes summer."),
            ("how rainbows form", "Rainbows form when sunlight enters raindrops, bends, reflects off the back of the drop and splits into its colours. You see one with the Sun behind you."),
            ("what DNA does", "DNA stores the instructions for building and running an organism. Its sequence of bases is read to make proteins, and it is copied when cells divide."),
        ),
        contexts=("in simple terms", "for a school project", "for my homework", "like I'm five", "for an exam tomorrow", "without heavy math", "for a science fair", "for my curious kid"),
        follow_ups=(
            "Any introductory textbook covers this in more depth with diagrams.",
            "It is a good example of how a simple rule can explain something we see every day.",
            "If you want the math behind it, look for a first-year university course online.",
            "Museums and science channels often have short videos showing it clearly.",
        ),
    ),
    3: Topic(
        subjects=(
            ("daily water intake", "Needs vary, but a common guideline is around 2 to 3 litres of fluid a day for adults, including what comes from food. Pale yellow urine is a good sign you are drinking enough."),
            ("a sprained ankle", "For a mild sprain, rest it, use ice for about 15 to 20 minutes at a time, wrap it with a compression bandage and keep it raised. See a doctor if you cannot put weight on it."),
            ("hiccups", "Hiccups are sudden involuntary spasms of the diaphragm, followed by the vocal cords snapping shut. They often follow eating fast or drinking fizzy drinks and usually stop on their own."),
            ("how much sleep adults need", "Most adults need seven to nine hours of sleep a night. Regular bedtimes and less screen light in the evening help you get it."),
            ("cracking your knuckles", "The popping sound is gas bubbles collapsing in the joint fluid. Studies have not found that knuckle cracking causes arthritis."),
            ("lowering blood pressure naturally", "Eating less salt, staying active, keeping a healthy weight, limiting alcohol and not smoking can all lower blood pressure. A doctor should still check readings that stay high."),
            ("cholesterol", "Cholesterol is a fatty substance the body needs to make cells and hormones. LDL in excess can build up in arteries, while HDL helps carry cholesterol away."),
            ("why we get a fever", "A fever is the body raising its temperature to help fight an infection. Most fevers are harmless, but a very high or long-lasting one needs medical attention."),
            ("how long a common cold lasts", "A common cold usually lasts about 7 to 10 days. Antibiotics do not help because colds are caused by viruses, so rest and fluids are the main treatment."),
            ("treating a minor burn", "Cool a minor burn under cool running water for about 20 minutes, then cover it loosely with a clean dressing. Do not use ice or butter on it."),
            ("vitamin D", "Vitamin D helps the body absorb calcium for strong bones. Skin makes it from sunlight, and it is also found in oily fish, eggs and fortified foods."),
            ("the benefits of walking", "Regular brisk walking strengthens the heart, helps control weight and blood sugar, and improves mood. About 150 minutes a week is a common target."),
        ),
        contexts=("at 40", "as a busy parent", "after a long winter", "as a beginner", "for my elderly dad", "without medication", "while training for a 5K", "this week"),
        follow_ups=(
            "If symptoms are severe or unusual, please see a doctor rather than relying on the internet.",
            "Your pharmacist is also a good free source of advice for minor problems.",
            "Everyone is a bit different, so pay attention to how your own body responds.",
            "Small daily habits usually matter more than any single quick fix.",
        ),
    ),
    4: Topic(
        subjects=(
            ("citing a website in APA style", "An APA 7 website citation lists the author, the date in parentheses, the page title in italics, the site name and the URL. Use the organisation as author if no person is named."),
            ("affect versus effect", "Affect is usually a verb meaning to influence, and effect is usually a noun meaning a result. For example, the weather affects my mood, and it has an effect on me."),
            ("writing a thesis statement", "A thesis statement is one or two sentences that state your main argument and can be debated. It usually goes at the end of the introduction."),
            ("studying for exams effectively", "Spread your study over several days, test yourself instead of rereading, and explain ideas in your own words. Sleep before the exam helps memory more than cramming."),
            ("its versus it's", "It's is short for it is or it has, while its shows possession with no apostrophe. The dog wagged its tail because it's happy."),
            ("similes and metaphors", "A simile compares two things using like or as, such as brave as a lion. A metaphor says one thing is another, such as time is a thief."),
            ("the number of continents", "Most English-speaking schools teach seven continents: Africa, Antarctica, Asia, Australia, Europe, North America and South America. Some countries count the Americas as one."),
            ("learning a new language as an adult", "Practise a little every day, focus on the most common words first, and speak early even with mistakes. Listening to native speakers helps a lot."),
            ("what a GPA is", "GPA stands for grade point average, the mean of your course grades on a scale, usually 0 to 4.0 in the US. It is weighted by credit hours."),
            ("taking good lecture notes", "Write down key ideas in your own words rather than every sentence, leave space to add things later, and review the notes within a day."),
            ("fewer versus less", "Use fewer for things you can count, such as fewer apples, and less for amounts you cannot count, such as less water."),
            ("writing a good essay introduction", "Start with a hook that draws the reader in, give a little context, and end the introduction with your thesis statement."),
        ),
        contexts=("for my college essay", "as an ESL student", "before finals", "for a research paper", "in high school", "as a returning student", "for my GED", "with a deadline on Monday"),
        follow_ups=(
            "Your school's writing centre or library can check your work for free.",
            "Grammar guides from university websites explain this with many examples.",
            "Practising with a few examples of your own is the fastest way to remember it.",
            "When in doubt, ask your teacher which style or rule they expect.",
        ),
    ),
    5: Topic(
        subjects=(
            ("speeding up a slow laptop", "Remove programs that start with the computer, uninstall software you do not use, free up disk space and check for malware. Adding RAM or an SSD helps most on older machines."),
            ("what RAM does", "RAM is the computer's short-term working memory, holding the programs and data in use right now. More RAM lets you run more things at once without slowing down."),
            ("making a strong password", "Use a long passphrase of several random words, or let a password manager generate one. Never reuse the same password on different sites."),
            ("what a VPN does", "A VPN encrypts your internet traffic and sends it through a server elsewhere, hiding it from your local network. It does not make you fully anonymous."),
            ("backing up a phone", "Turn on the built-in cloud backup, iCloud on iPhone or Google backup on Android, or copy the phone to a computer regularly. Keep at least one copy somewhere else."),
            ("HTTP versus HTTPS", "HTTPS is HTTP with encryption through TLS, so others on the network cannot read or change what you send. Browsers show a padlock for HTTPS sites."),
            ("clearing the browser cache", "The cache stores copies of pages and images so sites load faster. Clearing it from the browser's settings can fix pages that display wrongly."),
            ("removing malware from a PC", "Run a full scan with a reputable antivirus, remove what it finds, then update the system and change your passwords. Safe mode helps with stubborn infections."),
            ("what an IP address is", "An IP address is a number that identifies a device on a network so data can be delivered to it. Your home router usually gets one public address from your provider."),
            ("SSDs versus hard drives", "An SSD stores data on flash chips with no moving parts, so it is much faster and tougher than a spinning hard drive. Hard drives still give more space for the money."),
            ("Wi-Fi extenders", "A Wi-Fi extender receives your router's signal and rebroadcasts it to reach dead spots. Speed is often lower than near the router, and mesh systems do the job better."),
            ("browser cookies", "Cookies are small files websites store in your browser to remember logins, settings and shopping carts. Third-party cookies are mostly used for tracking and ads."),
        ),
        contexts=("on Windows 11", "on an old Mac", "for my grandma", "as a non-techie", "on a budget", "for a small office", "on my home network", "before I travel"),
        follow_ups=(
            "Always keep your system and apps updated, since updates fix security holes.",
            "The manufacturer's support site usually has step-by-step guides with screenshots.",
            "Back up your important files before changing anything major.",
            "If you are unsure, a local repair shop can check it for a small fee.",
        ),
    ),
    6: Topic(
        subjects=(
            ("the offside rule in soccer", "A player is offside if they are in the opponent's half and nearer the goal line than both the ball and the second-last defender when the ball is played to them."),
            ("a tennis tiebreak", "At six games all, players play a tiebreak where points count one, two, three, and the first to seven points with a two-point lead wins the set."),
            ("scoring in bowling", "A strike scores 10 plus the next two rolls, and a spare scores 10 plus the next roll. A perfect game of twelve strikes is 300."),
            ("the length of a marathon", "A marathon is 42.195 kilometres, or 26.2 miles. The distance was fixed after the 1908 London Olympics."),
            ("a hat-trick", "A hat-trick is when one player scores three goals in a single game. The term came from cricket, where a bowler took three wickets with three balls."),
            ("the NBA shot clock", "In the NBA a team has 24 seconds to attempt a shot that hits the rim. If it fails, the other team gets the ball."),
            ("a birdie in golf", "A birdie is one stroke under par on a hole, an eagle is two under and a bogey is one over."),
            ("the size of a rugby union team", "A rugby union team has fifteen players on the field: eight forwards and seven backs. Rugby league uses thirteen."),
            ("the designated hitter in baseball", "The designated hitter bats in place of the pitcher but does not play in the field. Since 2022 both major leagues use it."),
            ("building running stamina", "Increase your weekly distance slowly, by about ten percent, and make most runs easy enough to talk during. Add one longer run each week."),
            ("a penalty shootout", "If a knockout match is still tied after extra time, each team takes five penalty kicks in turn. If still level, it goes to sudden death."),
            ("the Tour de France yellow jersey", "The yellow jersey is worn by the overall leader, the rider with the lowest total time. Whoever holds it after the last stage wins the race."),
        ),
        contexts=("as a new fan", "for a bet with my brother", "while watching with my kids", "before the big game", "for my fantasy league", "as a total beginner", "for a pub quiz", "after last night's match"),
        follow_ups=(
            "The official rule book of the league explains the fine details.",
            "Watching a few games with the rule in mind makes it click quickly.",
            "Commentators usually point it out when it happens, which helps too.",
            "Local clubs are happy to explain the basics to newcomers.",
        ),
    ),
    7: Topic(
        subjects=(
            ("compound interest", "Compound interest means you earn interest on your interest as well as on the original amount. Over many years this makes savings grow much faster."),
            ("a Roth IRA", "With a Roth IRA you pay tax on the money now, and qualified withdrawals in retirement are tax-free. A traditional IRA gives the tax break now instead."),
            ("credit scores", "A credit score summarises how reliably you repay debt. Paying on time and keeping card balances low are the biggest factors."),
            ("an emergency fund", "An emergency fund is cash set aside for surprises like job loss or car repairs. Three to six months of essential expenses is a common goal."),
            ("inflation", "Inflation is the general rise in prices over time, which means each euro or dollar buys a little less. Central banks usually aim for about 2 percent a year."),
            ("stocks versus bonds", "A stock is a share of ownership in a company, while a bond is a loan to a company or government that pays interest. Stocks are riskier but have grown more over time."),
            ("a 401(k) employer match", "An employer match means your company adds money to your 401(k) when you contribute, for example 50 cents per dollar up to 6 percent of pay. Not taking it leaves free money behind."),
            ("gross versus net income", "Gross income is what you earn before taxes and deductions, and net income is what you actually take home after them."),
            ("index funds", "An index fund buys all the stocks in a market index, such as the S&P 500, to match its return. Fees are low because no one picks stocks."),
            ("APR on a credit card", "APR is the yearly interest rate charged on balances you carry. If you pay the full statement balance each month, you usually pay no interest."),
            ("registering an LLC", "An LLC is a business structure that separates your personal assets from business debts. You register it with your state and pay a filing fee."),
            ("budgeting with the 50/30/20 rule", "The 50/30/20 rule puts about 50 percent of take-home pay toward needs, 30 percent toward wants and 20 percent toward savings and debt."),
        ),
        contexts=("on a small salary", "for my first job", "before I turn 30", "with student loans", "as a freelancer", "in plain English", "as a new immigrant", "for my teenager"),
        follow_ups=(
            "For decisions specific to your situation, a fee-only financial adviser can help.",
            "Starting early matters more than picking the perfect product.",
            "Government consumer-finance websites have free calculators for this.",
            "Read the fees and terms carefully before you sign anything.",
        ),
    ),
    8: Topic(
        subjects=(
            ("standard guitar tuning", "Standard guitar tuning, from the thickest string to the thinnest, is E, A, D, G, B, E. A clip-on tuner makes it easy."),
            ("time signatures", "A time signature tells you how many beats are in each bar and which note gets one beat. In 4/4 there are four quarter-note beats per bar."),
            ("major versus minor chords", "A major chord uses the root, major third and fifth, and tends to sound bright. A minor chord lowers the third by a half step and sounds darker."),
            ("how Oscar winners are chosen", "Oscar winners are chosen by the voting members of the Academy of Motion Picture Arts and Sciences. Best Picture uses a preferential ballot."),
            ("musicals versus operas", "In an opera almost everything is sung, often with a classical style, while a musical mixes spoken dialogue with songs and dance."),
            ("tempo markings", "Tempo markings tell you how fast to play, often in Italian, such as largo for very slow, andante for walking pace and allegro for fast."),
            ("learning piano as an adult", "Adults can absolutely learn piano: practise a little every day, learn to read notes early and pick songs you enjoy. A teacher helps avoid bad habits."),
            ("encores at concerts", "An encore is an extra song played after the show seems to end, when the audience keeps applauding. Most bands plan it in advance."),
            ("the Beatles' first album", "The Beatles' first UK album was Please Please Me, released in 1963. It was recorded mostly in a single day."),
            ("the laugh track on sitcoms", "A laugh track is recorded laughter added to a comedy show. Some sitcoms are filmed before a live audience, whose real laughter is used instead."),
            ("what a music producer does", "A music producer guides the recording of a song: arranging it, coaching performers, and shaping the final sound with the engineers."),
            ("royalties from streaming", "Streaming services pay royalties per stream, shared among the label, the songwriters and the artist. Each stream pays only a fraction of a cent."),
        ),
        contexts=("as a beginner musician", "for my band", "for a movie night", "for a trivia game", "as a lifelong fan", "for my music class", "with no musical background", "before a concert"),
        follow_ups=(
            "Listening closely to a few examples is the best way to hear the difference.",
            "Free online lessons cover this in the first week of most courses.",
            "Fans on music forums love explaining details like this.",
            "Official interviews and liner notes often tell the full story.",
        ),
    ),
    9: Topic(
        subjects=(
            ("talking to a moody teenager", "Pick relaxed moments like car rides, listen more than you lecture, and don't push for answers. Showing respect for their opinions keeps the door open."),
            ("a friend who always cancels", "Tell them calmly that the last-minute cancellations hurt and ask whether something is going on. Then see if they make an effort."),
            ("splitting chores with a roommate", "Sit down together, list the chores and split them fairly, perhaps rotating weekly. Writing it down avoids arguments later."),
            ("toddler tantrums", "Tantrums are normal at this age because toddlers cannot yet manage big feelings. Stay calm, keep them safe, and don't give in to the demand that caused it."),
            ("meeting a partner's parents", "Be polite, dress a little smarter than usual, ask them questions about themselves and offer to help. Your partner can brief you on topics to avoid."),
            ("a long-distance relationship", "Regular calls, honest talk about expectations and having a plan to close the distance make it work. Trust is the main ingredient."),
            ("sibling rivalry", "Avoid comparing the children, give each some one-on-one time, and let them solve small disputes themselves while setting clear rules against hurting each other."),
            ("getting a baby to sleep", "A consistent bedtime routine such as bath, feed, story and bed helps. Put the baby down drowsy but awake so they learn to fall asleep on their own."),
            ("apologising after a fight", "A good apology names what you did wrong, says sorry without excuses and explains how you will do better. Then give the other person time."),
            ("difficult in-laws", "Stay polite, set boundaries together with your spouse, and let your spouse handle conflicts with their own parents."),
            ("making friends as an adult", "Join a regular activity such as a club, class or volunteer group, since friendship grows from seeing the same people often. Then suggest doing something outside it."),
            ("telling kids about a divorce", "Tell them together if you can, in simple words suited to their age, and make clear it is not their fault and that both parents still love them."),
        ),
        contexts=("as a single dad", "as a new mom", "after moving to a new city", "at 35", "without starting a fight", "as a stepparent", "for the first time", "this holiday season"),
        follow_ups=(
            "Every family is different, so adapt this to the people involved.",
            "If things feel unmanageable, a family counsellor can really help.",
            "Patience and consistency usually matter more than the perfect words.",
            "Talking to friends who have been through the same thing helps too.",
        ),
    ),
    10: Topic(
        subjects=(
            ("how a bill becomes law in the US", "A bill must pass both the House and the Senate in the same form and then be signed by the President. Congress can override a veto with two-thirds in each chamber."),
            ("the Electoral College", "US voters choose electors in each state, who then elect the President. A candidate needs 270 of the 538 electoral votes to win."),
            ("the separation of powers", "Separation of powers divides government into legislative, executive and judicial branches, each with checks on the others."),
            ("the filibuster", "A filibuster is a tactic in the US Senate to delay a vote by extending debate. Ending it normally takes 60 votes, called cloture."),
            ("parliamentary versus presidential systems", "In a parliamentary system the head of government comes from and answers to the legislature. In a presidential system the president is elected separately and serves a fixed term."),
            ("the role of the Supreme Court", "The US Supreme Court is the highest court, deciding cases about federal law and the Constitution. Its rulings bind all lower courts."),
            ("the US census", "The US census counts every resident every ten years, as the Constitution requires. The results decide how House seats are divided among the states."),
            ("referendums", "A referendum is a vote in which citizens decide directly on a specific question, such as a law or a constitutional change."),
            ("the UN Security Council", "The UN Security Council has fifteen members, five of them permanent with a veto: China, France, Russia, the United Kingdom and the United States."),
            ("gerrymandering", "Gerrymandering is drawing electoral district lines to favour one party or group, for example by packing opponents into a few districts."),
            ("European Parliament elections", "Members of the European Parliament are elected directly by citizens of each EU country every five years, using proportional representation."),
            ("a presidential veto", "A veto is the President's refusal to sign a bill passed by Congress. Congress can override it with a two-thirds vote in both the House and the Senate."),
        ),
        contexts=("for my civics class", "as a first-time voter", "as a non-American", "for a debate club", "in neutral terms", "before the election", "for a citizenship test", "for my grandson"),
        follow_ups=(
            "Official government websites explain the process with the exact rules.",
            "Civics textbooks cover this in the chapter on how government works.",
            "Details differ between countries, so check the rules where you live.",
            "Non-partisan groups publish plain-language guides on this.",
        ),
    ),
}
# fmt: on
