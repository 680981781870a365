"""The most common passwords, refused as new dashboard passwords (compared case-insensitively).

A few hundred entries from the public lists of leaked passwords (the top of the NCSC and
SecLists "most common" lists, with the seasonal, keyboard-walk and regional variants that
credential-stuffing tools try first). Shorter entries are refused by the minimum length anyway;
they stay so that the list reads as what it is. To refuse more, add words here.
"""

from __future__ import annotations

_WORDS = """
123456 password 12345678 qwerty 123456789 12345 1234 111111 1234567 dragon 123123 baseball
abc123 football monkey letmein shadow master 666666 qwertyuiop 123321 mustang 1234567890 michael
654321 superman 1qaz2wsx 7777777 121212 000000 qazwsx 123qwe killer trustno1 jordan jennifer
zxcvbnm asdfgh hunter buster soccer harley batman andrew tigger sunshine iloveyou 2000 charlie
robert thomas hockey ranger daniel starwars klaster 112233 george computer michelle jessica
pepper 1111 zxcvbn 555555 11111111 131313 freedom 777777 pass maggie 159753 aaaaaa ginger
princess joshua cheese amanda summer love ashley nicole chelsea biteme matthew access yankees
987654321 dallas austin thunder taylor matrix mobilemail mom monitor monitoring montana moon
moscow password1 password12 password123 password1234 passw0rd p@ssw0rd p@ssword pa55word
pa55w0rd qwerty123 qwerty1234 qwerty12345 qwertyui qwerty12 1q2w3e4r 1q2w3e4r5t 1q2w3e4r5t6y
1q2w3e 1qazxsw2 zaq12wsx zaq1zaq1 zaq1xsw2 1qaz2wsx3edc qazwsxedc qweasdzxc asdfghjkl asdfasdf
asdf1234 zxcvbnm123 iloveyou1 iloveyou2 iloveu princess1 sunshine1 football1 baseball1 superman1
batman123 monkey123 welcome welcome1 welcome123 welcome2 letmein1 letmein123 admin admin123
admin1234 administrator root toor changeme changeme123 default guest guest123 test test123
test1234 testing testing123 secret secret123 login login123 user user123 demo demo123 master123
master1 masterkey abc12345 abcd1234 abcdef abcdefg abcdefgh abcdefghi a1b2c3d4 a1b2c3 aa123456
aa12345678 1234qwer 123abc 123456a 123456aa 123456abc 12345a 12345678a 123456789a 1234567a
a123456 a12345678 qwe123 qwe12345 qwe123456 q1w2e3r4 q1w2e3r4t5 q1w2e3 1a2b3c4d 123654 123789
147258369 147258 147852369 159357 159753456 741852963 963852741 789456123 456789 987654
9876543210 0987654321 00000000 0000000000 11111 1111111 1111111111 12121212 123123123 12341234
123412345 1234512345 22222222 33333333 44444444 55555555 66666666 77777777 88888888 99999999
12344321 1234554321 11223344 11112222 10203040 102030 01234567 1234567891 12345678910
123456789012 696969 101010 112233445566 123456123456 987654321a 88888 999999 888888 232323
343434 454545 565656 131313131 sunshine123 flower flower123 butterfly butterfly1 angel angel123
angel1 lovely lovely1 loveme loveyou loveyou1 iloveyou123 baby baby123 babygirl babygirl1
princess123 prince prince1 queen football123 soccer123 basketball basketball1 hockey1
baseball123 tennis golf golfer swimming dragon123 dragon1 dragons shadow123 shadow1 killer123
hunter123 hunter1 ranger1 ninja ninja123 pokemon pokemon123 naruto naruto123 superman123
spiderman spiderman1 ironman batman1 joker starwars1 matrix123 mercedes ferrari porsche corvette
mustang1 yamaha harley1 chevy chevrolet computer1 internet internet1 microsoft windows windows1
apple apple123 samsung google google123 facebook youtube twitter linkedin yahoo hotmail gmail
outlook amazon netflix spotify whatever whatever1 nothing something anything everything forever
forever1 always never trust1 believe blessed blessed1 jesus jesus1 jesus123 jesuschrist christ
god godisgood heaven hallo hello hello123 hello1 hellohello hi123 hiya howdy cheers thankyou
thanks charlie1 charlie123 michael1 michael123 jennifer1 jessica1 ashley1 amanda1 nicole1
daniel1 andrew1 thomas1 robert1 william william1 richard david david123 james james1 john
john123 johnny jordan23 jordan1 michelle1 jasmine jasmine1 samantha samantha1 elizabeth melissa
natasha anthony joseph joshua1 matthew1 justin justin1 brandon brandon1 tigger1 maggie1 buster1
pepper1 ginger1 cookie cookie1 cookie123 chocolate chocolate1 cheese1 banana banana1 orange
orange1 cherry strawberry pumpkin peanut peanut1 coffee coffee1 pizza pizza123 summer1 summer123
summer2023 summer2024 winter winter1 winter2023 winter2024 spring spring2024 autumn autumn2024
january february march april may june july august september october november december monday
friday sunday weekend holiday vacation password2023 password2024 password2025 password2026
welcome2023 welcome2024 welcome2025 spring2023 spring2025 summer2025 winter2025 autumn2023
autumn2025 fall2024 fall2025 india india123 india@123 mumbai delhi bangalore chennai kolkata
hyderabad pune bharat krishna ganesh shiva sairam saibaba omsairam jaihind hindustan cricket
cricket123 sachin sachin123 dhoni virat rahul rahul123 priya priya123 pooja amit amit123 sandeep
deepak suresh ramesh mahesh rajesh ganesh123 lakshmi durga hanuman jaishriram jaimatadi qwerty1
qwerty11 qwertyu qwertz qwertz123 azerty azerty123 azertyuiop asdf asdfg asdfgh1 zxcv zxcvb
zxcvbn1 zxcvbnm1 qazwsx123 qazxsw wsxedc edcrfv rfvtgb tgbyhn mypassword mypass mypass123
yourpassword newpassword newpass oldpassword nopassword password! password01 password11
password2 password3 passpass passport passion passw0rd1 p@ssword1 p@55w0rd passw0rd! letmein!
qwerty! iloveyou! 123456! 12345678! abc123! admin! admin@123 pass@123 pass123 pass1234 pass12345
passwd passwd123 secret1 secret1234 private private1 personal access1 access123 access14
security security1 secure secure123 safety protected 1password 1qaz1qaz 2wsx3edc 3edc4rfv
4rfv5tgb 1q1q1q1q 1a1a1a1a q1q1q1q1 a1a1a1a1 aaaaaaaa aaaaaaaaaa abcabc abcabcabc abc123abc
abc12345678 qwertyqwerty asdasd asdasdasd zzzzzz zzzzzzzz xxxxxx xxxxxxxx qqqqqq qqqqqqqq wwwwww
ssssss dddddd ffffff killer1 master12 mustang123 harley123 thunder1 jordan123 yankees1 dallas1
austin1 taylor1 chelsea1 arsenal arsenal1 liverpool liverpool1 manutd manchester barcelona
realmadrid juventus chicago boston london london123 paris newyork california texas florida
canada australia america america1 usa123 england scotland ireland germany france italia monkey1
monkey12 donkey tiger tiger123 lion lion123 eagle eagle1 falcon falcon1 wolf wolfpack dolphin
dolphin1 panther panther1 jaguar cobra phoenix phoenix1 dragonfly fuckyou fuckoff asshole bitch
bitch1 shit pussy sexy sexy123 hottie hottie1 lover lover1 money money1 money123 cash rich
success success1 winner winner1 lucky lucky1 lucky7 lucky13 qwerty123456 qwertyuiop123
1qazxsw23edc password12345 password123456 1234567890qwerty iloveyou12 iloveyou22 loveyou2
iloveme ilovegod ilovemymom ilovemyfamily trustme letmein2 openup opensesame open123 enter
enter123 start start123 begin system system1 server server1 database oracle mysql postgres
postgres123 redis root123 ubuntu linux linux123 debian raspberry pi raspberry1 alpine docker
kubernetes paygate paygate123 payment payment123 merchant merchant123 gateway checkout dashboard
"""

COMMON_PASSWORDS: frozenset[str] = frozenset(_WORDS.split())


def is_common(password: str) -> bool:
    """Whether ``password`` (ignoring case and surrounding spaces) is on the list."""
    return password.strip().casefold() in COMMON_PASSWORDS
