"""The skills on a corpus of spoken requests and of general questions.

`UTTERANCES`: requests as people say them (typed, or as a recognizer writes them:
lowercase, no punctuation, numbers as words), English and Chinese, each with the
intent and the slots it must give; at least 97% must be right. `GENERAL`: questions
for the language model (including near misses: "is it morning in tokyo", "tell me
about timers in cooking"); at most 1% may be captured by a skill. The clock is fixed
at Tuesday 1 December 2026, 09:58:30 local time. bench/skills.py speaks the same
requests.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from app.skills.intents import IntentMatcher
from app.skills.skillset import SkillSet
from app.skills.timers import TimerStore

# "utterance | intent | slot=value, slot=value" (only the slots named are checked;
# s= is duration_seconds, msg= is message)
EN = """
what time is it | HassGetCurrentTime | time=09:58
What time is it? | HassGetCurrentTime | time=09:58
what's the time | HassGetCurrentTime | time=09:58
whats the time | HassGetCurrentTime | time=09:58
what time is it in tokyo | HearthTimeIn | zone=Asia/Tokyo
what time is it in new york | HearthTimeIn | zone=America/New_York
what is the time in london | HearthTimeIn | zone=Europe/London
what time will it be in three hours | HearthTimeAfter | time=12:58
What is the time now? | HassGetCurrentTime | time=09:58
what is the time right now | HassGetCurrentTime | time=09:58
tell me the time | HassGetCurrentTime | time=09:58
can you tell me the time please | HassGetCurrentTime | time=09:58
do you know what time it is | HassGetCurrentTime | time=09:58
what time is it right now | HassGetCurrentTime | time=09:58
what's the current time | HassGetCurrentTime | time=09:58
current time | HassGetCurrentTime | time=09:58
time please | HassGetCurrentTime | time=09:58
what time have you got | HassGetCurrentTime | time=09:58
have you got the time | HassGetCurrentTime | time=09:58
what's the date | HassGetCurrentDate | date=2026-12-01
what is today's date | HassGetCurrentDate | date=2026-12-01
whats todays date | HassGetCurrentDate | date=2026-12-01
What's the date today? | HassGetCurrentDate | date=2026-12-01
what day is it | HassGetCurrentDate | date=2026-12-01
what day is it today | HassGetCurrentDate | date=2026-12-01
what day of the week is it | HassGetCurrentDate | date=2026-12-01
tell me the date | HassGetCurrentDate | date=2026-12-01
what date is it | HassGetCurrentDate | date=2026-12-01
which day is it | HassGetCurrentDate | date=2026-12-01
what date is next friday | HearthDayDate | date=2026-12-04
what date is next monday | HearthDayDate | date=2026-12-07
what day is tomorrow | HearthDayDate | date=2026-12-02
what is the date tomorrow | HearthDayDate | date=2026-12-02
how many days are in february | HearthMonthDays | days=28
is it morning or afternoon | HearthPartOfDay | part=morning
what year is it | HearthYearMonth | year=2026
what month is it | HearthYearMonth | month=12
how many days until christmas | HearthDaysUntil | days=24
what is half of ninety | HearthArithmetic | result=45
what is double twelve | HearthArithmetic | result=24
set a timer for 5 minutes | HassStartTimer | s=300
set a timer for five minutes | HassStartTimer | s=300
Set a timer for 10 minutes. | HassStartTimer | s=600
set a timer for ten minutes please | HassStartTimer | s=600
start a timer for 20 minutes | HassStartTimer | s=1200
create a timer for thirty seconds | HassStartTimer | s=30
set a timer for 90 seconds | HassStartTimer | s=90
set a timer for ninety seconds | HassStartTimer | s=90
set a timer for an hour | HassStartTimer | s=3600
set a timer for one hour | HassStartTimer | s=3600
set a timer for 2 hours | HassStartTimer | s=7200
set a timer for an hour and a half | HassStartTimer | s=5400
set a timer for half an hour | HassStartTimer | s=1800
set a timer for two and a half minutes | HassStartTimer | s=150
set a timer for 1 hour and 20 minutes | HassStartTimer | s=4800
set a timer for one hour twenty minutes | HassStartTimer | s=4800
set a timer for 2 minutes and 30 seconds | HassStartTimer | s=150
set a timer for twenty five minutes | HassStartTimer | s=1500
set a timer for forty five minutes | HassStartTimer | s=2700
set a timer for 3 minutes | HassStartTimer | s=180
set a 10 minute timer | HassStartTimer | s=600
set a ten minute timer | HassStartTimer | s=600
start a 15 minute timer | HassStartTimer | s=900
set a three minute timer | HassStartTimer | s=180
timer for 8 minutes | HassStartTimer | s=480
timer for eight minutes | HassStartTimer | s=480
5 minute timer | HassStartTimer | s=300
twelve minute timer | HassStartTimer | s=720
set timer 5 minutes | HassStartTimer | s=300
start a countdown for 60 seconds | HassStartTimer | s=60
count down from two minutes | HassStartTimer | s=120
set a timer for 45 seconds | HassStartTimer | s=45
could you set a timer for 4 minutes | HassStartTimer | s=240
i want a timer for 7 minutes | HassStartTimer | s=420
set a timer for 100 minutes | HassStartTimer | s=6000
set a timer for a minute | HassStartTimer | s=60
set a pasta timer for 10 minutes | HassStartTimer | s=600, name=pasta
set a pasta timer for ten minutes | HassStartTimer | s=600, name=pasta
set an egg timer for 6 minutes | HassStartTimer | s=360, name=egg
set a rice timer for twenty minutes | HassStartTimer | s=1200, name=rice
start a bread timer for 45 minutes | HassStartTimer | s=2700, name=bread
set a timer for 12 minutes for the pizza | HassStartTimer | s=720, name=pizza
set a timer for 5 minutes called tea | HassStartTimer | s=300, name=tea
set a 10 minute timer for pasta | HassStartTimer | s=600, name=pasta
set a timer named laundry for 40 minutes | HassStartTimer | s=2400, name=laundry
set a 3 minute timer called eggs | HassStartTimer | s=180, name=eggs
set a chicken timer for an hour and a half | HassStartTimer | s=5400, name=chicken
set a cookie timer for twelve minutes | HassStartTimer | s=720, name=cookie
set a timer for eight minutes for the potatoes | HassStartTimer | s=480, name=potatoes
set a tea timer for 4 minutes | HassStartTimer | s=240, name=tea
set the oven timer for half an hour | HassStartTimer | s=1800, name=oven
cancel the timer | HassCancelTimer |
Cancel the timer. | HassCancelTimer |
stop the timer | HassCancelTimer |
delete the timer | HassCancelTimer |
turn off the timer | HassCancelTimer |
cancel my timer | HassCancelTimer |
cancel the pasta timer | HassCancelTimer | name=pasta
stop the egg timer | HassCancelTimer | name=egg
delete the rice timer | HassCancelTimer | name=rice
cancel the timer for the pizza | HassCancelTimer | name=pizza
remove the bread timer | HassCancelTimer | name=bread
cancel the 10 minute timer | HassCancelTimer |
cancel all timers | HassCancelAllTimers |
cancel all the timers | HassCancelAllTimers |
stop all timers | HassCancelAllTimers |
delete all my timers | HassCancelAllTimers |
clear all timers | HassCancelAllTimers |
how much time is left | HassTimerStatus |
how much time is left on the timer | HassTimerStatus |
how much time is left on my timer | HassTimerStatus |
how long is left on the timer | HassTimerStatus |
how long left on the pasta timer | HassTimerStatus | name=pasta
how much time is left on the egg timer | HassTimerStatus | name=egg
what timers are running | HassTimerStatus |
what timers do i have | HassTimerStatus |
list my timers | HassTimerStatus |
show my timers | HassTimerStatus |
check the timer | HassTimerStatus |
timer status | HassTimerStatus |
how long until the timer goes off | HassTimerStatus |
how long until the rice timer is done | HassTimerStatus | name=rice
are there any timers running | HassTimerStatus |
do i have any alarms | HassTimerStatus |
status of the timer | HassTimerStatus |
how is the bread timer doing | HassTimerStatus | name=bread
pause the timer | HassPauseTimer |
pause my timer | HassPauseTimer |
pause the pasta timer | HassPauseTimer | name=pasta
hold the timer | HassPauseTimer |
put the timer on hold | HassPauseTimer |
resume the timer | HassUnpauseTimer |
continue the timer | HassUnpauseTimer |
unpause the timer | HassUnpauseTimer |
resume the pasta timer | HassUnpauseTimer | name=pasta
restart the timer | HassUnpauseTimer |
add 2 minutes to the timer | HassIncreaseTimer | s=120
add two minutes to the timer | HassIncreaseTimer | s=120
add 5 minutes to the pasta timer | HassIncreaseTimer | s=300, name=pasta
add thirty seconds to the timer | HassIncreaseTimer | s=30
increase the timer by 1 minute | HassIncreaseTimer | s=60
extend the timer by ten minutes | HassIncreaseTimer | s=600
give the timer another 3 minutes more | HassIncreaseTimer | s=180
take 1 minute off the timer | HassDecreaseTimer | s=-60
remove 2 minutes from the timer | HassDecreaseTimer | s=-120
subtract thirty seconds from the timer | HassDecreaseTimer | s=-30
decrease the timer by five minutes | HassDecreaseTimer | s=-300
set an alarm for 7 am | HearthSetAlarm | time=07:00, date=2026-12-02
set an alarm for 7 a m | HearthSetAlarm | time=07:00
set an alarm for seven am | HearthSetAlarm | time=07:00
Set an alarm for 6:30 a.m. | HearthSetAlarm | time=06:30
set an alarm for six thirty am | HearthSetAlarm | time=06:30
set an alarm for 10 pm | HearthSetAlarm | time=22:00, date=2026-12-01
set an alarm for ten thirty pm | HearthSetAlarm | time=22:30
set an alarm for 5:45 pm | HearthSetAlarm | time=17:45
set alarm for 7:15 | HearthSetAlarm | time=19:15
set an alarm at noon | HearthSetAlarm | time=12:00
set an alarm for midnight | HearthSetAlarm | time=00:00, date=2026-12-02
wake me up at 6 am | HearthSetAlarm | time=06:00
wake me up at six thirty in the morning | HearthSetAlarm | time=06:30
wake me up tomorrow at 7 am | HearthSetAlarm | time=07:00, date=2026-12-02
wake me at quarter past six in the morning | HearthSetAlarm | time=06:15
set an alarm for half past seven in the morning | HearthSetAlarm | time=07:30
set an alarm for quarter to eight am | HearthSetAlarm | time=07:45
set an alarm for 19:30 | HearthSetAlarm | time=19:30
alarm for 8 am | HearthSetAlarm | time=08:00
set a 6 am alarm | HearthSetAlarm | time=06:00
set an alarm for seven o'clock in the morning | HearthSetAlarm | time=07:00
set an alarm for 3 pm | HearthSetAlarm | time=15:00
cancel the alarm | HearthCancelAlarm |
cancel my alarm | HearthCancelAlarm |
disable my alarms | HearthCancelAlarm |
delete all alarms | HearthCancelAlarm |
cancel the alarm for 7 am | HearthCancelAlarm |
remind me to take my pills at 9 pm | HearthSetReminder | msg=take your pills, time=21:00
remind me to call mom at 5 pm | HearthSetReminder | msg=call mom, time=17:00
remind me to look at the oven at 5 pm | HearthSetReminder | msg=look at the oven, time=17:00
remind me at 8 pm to water the plants | HearthSetReminder | msg=water the plants, time=20:00
remind me to check the oven in 10 minutes | HearthSetReminder | msg=check the oven, s=600
remind me in 10 minutes to check the oven | HearthSetReminder | msg=check the oven, s=600
remind me in twenty minutes to flip the bread | HearthSetReminder | msg=flip the bread, s=1200
remind me to turn off the stove in five minutes | HearthSetReminder | msg=turn off the stove, s=300
in 15 minutes remind me to stir the soup | HearthSetReminder | msg=stir the soup, s=900
remind me to call the vet tomorrow at 9 am | HearthSetReminder | msg=call the vet, time=09:00
remind me in an hour to move the car | HearthSetReminder | msg=move the car, s=3600
remind me in half an hour | HearthSetReminder | s=1800
set a reminder for 6 pm to feed the cat | HearthSetReminder | msg=feed the cat, time=18:00
remind me about the laundry in 40 minutes | HearthSetReminder | msg=the laundry, s=2400
what is two plus two | HearthArithmetic | result=4
What is 2 + 2? | HearthArithmetic | result=4
whats two plus two | HearthArithmetic | result=4
two plus two | HearthArithmetic | result=4
what's 7 times 8 | HearthArithmetic | result=56
what is seven times eight | HearthArithmetic | result=56
what is 12 times 12 | HearthArithmetic | result=144
what's 100 divided by 4 | HearthArithmetic | result=25
what is one hundred divided by four | HearthArithmetic | result=25
what is 15 percent of 80 | HearthArithmetic | result=12
what's fifteen percent of eighty | HearthArithmetic | result=12
what is 20% of 150 | HearthArithmetic | result=30
what is the square root of 144 | HearthArithmetic | result=12
what's the square root of eighty one | HearthArithmetic | result=9
what is 5 squared | HearthArithmetic | result=25
what is two to the power of ten | HearthArithmetic | result=1024
what is 3 cubed | HearthArithmetic | result=27
what is 1000 minus 1 | HearthArithmetic | result=999
what is nine hundred ninety nine plus one | HearthArithmetic | result=1000
what is three point five times two | HearthArithmetic | result=7
calculate 45 times 3 | HearthArithmetic | result=135
calculate two hundred fifty plus seventy five | HearthArithmetic | result=325
how much is 6 times 7 | HearthArithmetic | result=42
what's 50 minus 8 | HearthArithmetic | result=42
what is 10 divided by 3 | HearthArithmetic | result=3.3333
what is 2 plus 3 times 4 | HearthArithmetic | result=14
add 17 and 25 | HearthArithmetic | result=42
subtract 8 from 20 | HearthArithmetic | result=12
multiply 9 by 6 | HearthArithmetic | result=54
divide 144 by 12 | HearthArithmetic | result=12
what is 7 x 6 | HearthArithmetic | result=42
what is 81 over 9 | HearthArithmetic | result=9
what is one million minus one | HearthArithmetic | result=999999
what is 0.5 plus 0.25 | HearthArithmetic | result=0.75
what is twenty-five times four | HearthArithmetic | result=100
what does 12 times 11 equal | HearthArithmetic | result=132
what is 100 divided by 0 | HearthArithmetic | error=divide-by-zero
how many grams in a pound | HearthConvertUnit | from_unit=lb, to_unit=g, result=453.59
how many grams are in a pound | HearthConvertUnit | result=453.59
how many ounces in a pound | HearthConvertUnit | result=16
how many kilometers is 5 miles | HearthConvertUnit | from_unit=mi, to_unit=km, result=8.05
convert 5 miles to kilometers | HearthConvertUnit | result=8.05
convert five miles to kilometers | HearthConvertUnit | result=8.05
what is 10 kilometers in miles | HearthConvertUnit | result=6.21
convert 350 degrees fahrenheit to celsius | HearthConvertUnit | to_unit=degc, result=176.67
what's 180 degrees celsius in fahrenheit | HearthConvertUnit | result=356
convert 180 celsius to fahrenheit | HearthConvertUnit | result=356
how many cups in a liter | HearthConvertUnit | result=4.23
how many milliliters in a cup | HearthConvertUnit | result=236.59
how many tablespoons in a cup | HearthConvertUnit | result=16
how many teaspoons in a tablespoon | HearthConvertUnit | result=3
convert 2 cups to milliliters | HearthConvertUnit | result=473.18
what is 1.5 kilograms in pounds | HearthConvertUnit | result=3.31
how many pounds is 2 kilograms | HearthConvertUnit | result=4.41
convert 6 feet to meters | HearthConvertUnit | result=1.83
how many centimeters in an inch | HearthConvertUnit | result=2.54
how many inches in a foot | HearthConvertUnit | result=12
what is 100 kilometers per hour in miles per hour | HearthConvertUnit | result=62.14
how many seconds in an hour | HearthConvertUnit | result=3600
200 grams in ounces | HearthConvertUnit | result=7.05
convert 3 tablespoons to teaspoons | HearthConvertUnit | result=9
how many liters in a gallon | HearthConvertUnit | result=3.79
repeat that | HearthRepeat |
Repeat that, please. | HearthRepeat |
say that again | HearthRepeat |
what did you say | HearthRepeat |
can you repeat that | HearthRepeat |
come again | HearthRepeat |
pardon | HearthRepeat |
i didn't catch that | HearthRepeat |
stop | HearthStop |
Stop! | HearthStop |
stop it | HearthStop |
stop the alarm | HearthStop |
turn off the alarm | HearthStop |
be quiet | HearthStop |
that's enough | HearthStop |
silence | HearthStop |
okay stop | HearthStop |
never mind | HassNevermind |
nevermind | HassNevermind |
forget it | HassNevermind |
louder | HassSetVolumeRelative | volume_step=up
turn it up | HassSetVolumeRelative | volume_step=up
volume up | HassSetVolumeRelative | volume_step=up
speak louder | HassSetVolumeRelative | volume_step=up
quieter | HassSetVolumeRelative | volume_step=down
turn the volume down | HassSetVolumeRelative | volume_step=down
volume down | HassSetVolumeRelative | volume_step=down
set the volume to 50 percent | HassSetVolume | volume_level=50
set the volume to 30% | HassSetVolume | volume_level=30
volume 80 percent | HassSetVolume | volume_level=80
set the volume to seventy percent | HassSetVolume | volume_level=70
"""

ZH = """
现在几点了 | HassGetCurrentTime | time=09:58
现在几点 | HassGetCurrentTime | time=09:58
几点了 | HassGetCurrentTime | time=09:58
现在几点了？ | HassGetCurrentTime | time=09:58
请问现在几点 | HassGetCurrentTime | time=09:58
现在是几点 | HassGetCurrentTime | time=09:58
现在什么时间 | HassGetCurrentTime | time=09:58
告诉我现在几点 | HassGetCurrentTime | time=09:58
现在几点钟 | HassGetCurrentTime | time=09:58
几点钟了 | HassGetCurrentTime | time=09:58
今天几号 | HassGetCurrentDate | date=2026-12-01
今天是几号 | HassGetCurrentDate | date=2026-12-01
今天几月几号 | HassGetCurrentDate | date=2026-12-01
今天星期几 | HassGetCurrentDate | date=2026-12-01
今天是星期几 | HassGetCurrentDate | date=2026-12-01
今天的日期 | HassGetCurrentDate | date=2026-12-01
今天礼拜几 | HassGetCurrentDate | date=2026-12-01
设置一个五分钟的计时器 | HassStartTimer | s=300
设置5分钟计时器 | HassStartTimer | s=300
设置十分钟计时器 | HassStartTimer | s=600
设置一个10分钟的倒计时 | HassStartTimer | s=600
定一个三分钟的计时器 | HassStartTimer | s=180
设一个二十分钟的定时器 | HassStartTimer | s=1200
开始一个一小时的计时器 | HassStartTimer | s=3600
设置一个半小时的计时器 | HassStartTimer | s=1800
设置一个一个半小时的计时器 | HassStartTimer | s=5400
倒计时五分钟 | HassStartTimer | s=300
计时三十秒 | HassStartTimer | s=30
帮我计时十分钟 | HassStartTimer | s=600
十五分钟倒计时 | HassStartTimer | s=900
设置一个两分三十秒的计时器 | HassStartTimer | s=150
设置一个1小时20分钟的计时器 | HassStartTimer | s=4800
设置一个十分钟的面条计时器 | HassStartTimer | s=600, name=面条
设置一个八分钟的鸡蛋计时器 | HassStartTimer | s=480, name=鸡蛋
设置一个米饭计时器，二十分钟 | HassStartTimer | s=1200, name=米饭
取消计时器 | HassCancelTimer |
关掉计时器 | HassCancelTimer |
停止计时器 | HassCancelTimer |
删除定时器 | HassCancelTimer |
取消面条计时器 | HassCancelTimer | name=面条
关掉鸡蛋计时器 | HassCancelTimer | name=鸡蛋
取消所有计时器 | HassCancelAllTimers |
取消全部计时器 | HassCancelAllTimers |
计时器还剩多少时间 | HassTimerStatus |
计时器还有多久 | HassTimerStatus |
还剩多少时间 | HassTimerStatus |
还有多久 | HassTimerStatus |
面条计时器还剩多久 | HassTimerStatus | name=面条
看看计时器 | HassTimerStatus |
有哪些计时器 | HassTimerStatus |
暂停计时器 | HassPauseTimer |
把计时器暂停 | HassPauseTimer |
继续计时器 | HassUnpauseTimer |
恢复计时器 | HassUnpauseTimer |
计时器加两分钟 | HassIncreaseTimer | s=120
计时器增加五分钟 | HassIncreaseTimer | s=300
计时器延长十分钟 | HassIncreaseTimer | s=600
计时器减少一分钟 | HassDecreaseTimer | s=-60
计时器减两分钟 | HassDecreaseTimer | s=-120
设置一个早上七点的闹钟 | HearthSetAlarm | time=07:00
定一个早上六点半的闹钟 | HearthSetAlarm | time=06:30
明天早上七点叫我起床 | HearthSetAlarm | time=07:00, date=2026-12-02
早上6点叫醒我 | HearthSetAlarm | time=06:00
把闹钟设在晚上十点 | HearthSetAlarm | time=22:00
闹钟定在下午三点 | HearthSetAlarm | time=15:00
设置一个下午五点半的闹钟 | HearthSetAlarm | time=17:30
晚上8点15分的闹钟 | HearthSetAlarm | time=20:15
设置闹钟七点 | HearthSetAlarm | time=19:00
取消闹钟 | HearthCancelAlarm |
关掉闹钟 | HearthStop |
删除我的闹钟 | HearthCancelAlarm |
五分钟后提醒我关火 | HearthSetReminder | msg=关火, s=300
十分钟后提醒我看一下烤箱 | HearthSetReminder | msg=看一下烤箱, s=600
半小时后提醒我吃药 | HearthSetReminder | msg=吃药, s=1800
一个小时以后提醒我收衣服 | HearthSetReminder | msg=收衣服, s=3600
二十分钟后提醒我 | HearthSetReminder | s=1200
晚上九点提醒我吃药 | HearthSetReminder | msg=吃药, time=21:00
下午三点提醒我开会 | HearthSetReminder | msg=开会, time=15:00
提醒我十分钟后关火 | HearthSetReminder | msg=关火, s=600
二加二等于多少 | HearthArithmetic | result=4
2加2等于几 | HearthArithmetic | result=4
三乘以四等于多少 | HearthArithmetic | result=12
十五乘十二是多少 | HearthArithmetic | result=180
100除以4等于多少 | HearthArithmetic | result=25
一百减去三十等于多少 | HearthArithmetic | result=70
144的平方根是多少 | HearthArithmetic | result=12
5的平方等于多少 | HearthArithmetic | result=25
2的10次方是多少 | HearthArithmetic | result=1024
80的百分之十五是多少 | HearthArithmetic | result=12
计算三百五十加一百五十 | HearthArithmetic | result=500
算一下七乘以八 | HearthArithmetic | result=56
二百五十除以五等于多少 | HearthArithmetic | result=50
三点五乘以二等于几 | HearthArithmetic | result=7
九十九加一 | HearthArithmetic | result=100
1除以0等于多少 | HearthArithmetic | error=divide-by-zero
5英里等于多少公里 | HearthConvertUnit | from_unit=mi, to_unit=km, result=8.05
五公斤等于多少磅 | HearthConvertUnit | result=11.02
一磅是多少克 | HearthConvertUnit | result=453.59
一百华氏度等于多少摄氏度 | HearthConvertUnit | result=37.78
三斤是多少克 | HearthConvertUnit | result=1500
把两杯换算成毫升 | HearthConvertUnit | result=473.18
十公里等于多少英里 | HearthConvertUnit | result=6.21
一英尺等于多少厘米 | HearthConvertUnit | result=30.48
一加仑等于多少升 | HearthConvertUnit | result=3.79
一小时等于多少秒 | HearthConvertUnit | result=3600
再说一遍 | HearthRepeat |
你说什么 | HearthRepeat |
重复一下 | HearthRepeat |
请再说一次 | HearthRepeat |
你刚才说什么 | HearthRepeat |
停 | HearthStop |
停止 | HearthStop |
别响了 | HearthStop |
关掉铃声 | HearthStop |
安静 | HearthStop |
算了 | HassNevermind |
没事了 | HassNevermind |
大声一点 | HassSetVolumeRelative | volume_step=up
声音大一点 | HassSetVolumeRelative | volume_step=up
小声一点 | HassSetVolumeRelative | volume_step=down
音量调小一点 | HassSetVolumeRelative | volume_step=down
把音量调到百分之五十 | HassSetVolume | volume_level=50
音量调到30 | HassSetVolume | volume_level=30
"""


_SHORT = {"s": "duration_seconds", "msg": "message"}


def parse(table: str) -> list[tuple[str, str, dict[str, str]]]:
    """The rows of a table above: (utterance, intent, expected slots)."""
    rows = []
    for line in table.strip().splitlines():
        text, intent, slots = (part.strip() for part in line.split("|"))
        pairs = (pair.strip().split("=", 1) for pair in slots.split(",") if pair.strip())
        expected = {_SHORT.get(key, key): value for key, value in pairs}
        rows.append((text, intent, expected))
    return rows


UTTERANCES = parse(EN) + parse(ZH)

GENERAL_EN = """
what is the capital of france
what's the capital of japan
tell me about timers in cooking
tell me a joke
who wrote romeo and juliet
how do i boil an egg
how long should i boil an egg
how long does it take to bake bread
what is the time complexity of quicksort
what time zone is paris in
what time does the sun set in summer
what is the date of the french revolution
when was the declaration of independence signed
how many people live in china
how many calories are in an apple
what is love
what is the meaning of life
what's up
what is a timer
what is an alarm clock
who invented the alarm clock
how does a kitchen timer work
why is the sky blue
what is photosynthesis
explain gravity to a child
what is the speed of light
how far away is the moon
how big is the sun
what is the tallest mountain in the world
who is the president of france
what is the population of germany
what is the best way to learn piano
can you recommend a good book
write a poem about autumn
tell me a story about a dragon
what's the weather like today
will it rain tomorrow
how are you
who are you
what is your name
what can you do
are you a robot
do you like music
what is your favorite color
good morning
hello
hi there
thank you
thanks a lot
how old is the universe
what is a black hole
how do airplanes fly
how do i make pancakes
what should i cook for dinner
give me a recipe for tomato soup
how long do i cook pasta
what temperature should i bake chicken at
how many eggs are in a dozen
is it safe to eat raw cookie dough
how do i get rid of hiccups
what is the difference between baking soda and baking powder
why do onions make you cry
how do i sharpen a knife
what is the boiling point of water
what is the freezing point of water in fahrenheit
how hot is the surface of the sun
what does a thermometer measure
what is the history of the calendar
why are there twelve months in a year
why does a week have seven days
who invented time zones
what is daylight saving time
when does daylight saving time end
what is a leap year
is this a leap year
how long is a light year
how long is a marathon
what is the longest river in africa
what language do they speak in brazil
how do you say hello in spanish
translate good night into french
what is two in french
spell necessary
what rhymes with orange
define serendipity
what does ubiquitous mean
what is an adjective
what is the plural of mouse
who painted the mona lisa
who discovered penicillin
what is dna
how does the heart work
how much water should i drink a day
how many hours of sleep do i need
is coffee bad for you
what are the symptoms of the flu
how do vaccines work
what is the stock market
how do i save money
what is inflation
what is a mortgage
how do computers work
what is python
what is machine learning
what is the internet
who founded microsoft
what is an operating system
how do i reset my router
what is bluetooth
why is my phone slow
how do i take a screenshot
what is the best programming language
play some music
play jazz
what song is this
who sings let it be
recommend a movie
what movies are out this week
who won the world cup in 2018
how many players are on a soccer team
what are the rules of chess
how does a knight move in chess
tell me something interesting
tell me a fun fact
what happened today in history
what is the news
what's the news today
who is albert einstein
what is the theory of relativity
what is quantum physics
what is the largest animal
how fast can a cheetah run
do dogs see in color
why do cats purr
how long do elephants live
what do pandas eat
how tall is a giraffe
what is the smallest country in the world
where is mount everest
how deep is the ocean
why is the ocean salty
what causes earthquakes
what is a volcano
how are rainbows formed
what is the greenhouse effect
how do solar panels work
what is electricity
who invented the light bulb
how does a microwave work
can i put metal in the microwave
how do i clean my oven
how often should i water my plants
how do i grow tomatoes
when should i plant tulips
what is a good name for a dog
how do i train my puppy
set the table for dinner
remind me what a noun is
who set the timer on the bomb in the movie
stop climate change how
how can i stop procrastinating
how do i stop snoring
stop and think about it
repeat after me the alphabet
can you say the alphabet
count to ten
sing me a song
what is the square of the hypotenuse
what is pi
what is infinity
what is a prime number
is seven a prime number
what is algebra
what is the pythagorean theorem
who invented calculus
how many sides does a hexagon have
what is a fraction
what is the metric system
why does america use feet
what is a mile
what is a kilogram
who defined the meter
how long is a minute in space
what day is christmas this year
what day was i born
what year is it in the chinese calendar
when is thanksgiving
how much time is left for the planet
how much time do we have left
how long until the sun burns out
what is the volume of a sphere
what is the volume of the earth
turn the page
turn on the light
open the door
lock the door
call my mother
send a message to john
order a pizza
buy milk
add milk to my shopping list
what is on my calendar today
read my email
navigate to the nearest gas station
how far is it to london
how do i get to the airport
book a flight to paris
what is the exchange rate of the euro
how much is a dollar in yen
how much is bitcoin worth
what is five in roman numerals
what comes after a million
how do you write one thousand in words
what is the biggest number
what's two plus two in french
is two plus two four
why is two plus two four
who said two plus two is five
what is ten percent of a good idea
how many minutes are in a football game
how many seconds is a long time
how many kilometers is the marathon
how many miles to the moon
how many grams of protein should i eat
how many cups of coffee is too many
convert this sentence to french
what is a pint of beer
a pound of feathers or a pound of bricks
what weighs more a kilo of steel or a kilo of feathers
"""

GENERAL_ZH = """
法国的首都是哪里
讲个笑话
今天天气怎么样
明天会下雨吗
你叫什么名字
你是谁
你会做什么
什么是计时器
怎么煮鸡蛋
鸡蛋要煮多久
面条怎么做
红烧肉怎么做
给我推荐一本书
写一首关于秋天的诗
讲一个故事
中国有多少人口
长城有多长
珠穆朗玛峰有多高
太阳有多大
月亮离地球有多远
为什么天空是蓝色的
什么是光合作用
什么是黑洞
谁发明了电灯
谁写了红楼梦
李白是谁
孔子是谁
北京有什么好玩的
上海在哪里
长江有多长
黄河流经哪些省份
今天有什么新闻
现在的美国总统是谁
时间过得真快
时间是什么
一天有多少个小时为什么
几点钟开始营业
一加一为什么等于二
数学难不难
什么是质数
七是质数吗
圆周率是多少
什么是勾股定理
怎么学好英语
你好
早上好
谢谢你
晚安
我有点饿了
我今天很累
你喜欢音乐吗
放一首歌
播放周杰伦的歌
打开灯
关上窗户
给妈妈打电话
帮我发个消息
我想买牛奶
附近有什么餐厅
怎么去机场
火车票多少钱
人民币兑美元汇率是多少
比特币值多少钱
怎么减肥
每天应该喝多少水
感冒了怎么办
咖啡对身体好吗
猫为什么会呼噜
狗能看见颜色吗
大熊猫吃什么
长颈鹿有多高
地震是怎么发生的
彩虹是怎么形成的
太阳能板是怎么工作的
微波炉是怎么工作的
烤箱怎么清洁
怎么种西红柿
怎么训练小狗
闹钟是谁发明的
计时器是怎么工作的
提醒事项有什么用
停车场在哪里
停电了怎么办
重复是学习之母是什么意思
说一个成语
翻译一下你好
英语的你好怎么说
一公斤棉花和一公斤铁哪个重
一年有几个季节
为什么一周有七天
什么是闰年
今年是闰年吗
春节是哪一天
中秋节吃什么
东京现在几点
纽约现在是几点
"""

GENERAL = [line.strip() for line in (GENERAL_EN + GENERAL_ZH).splitlines() if line.strip()]

NOW = datetime(2026, 12, 1, 9, 58, 30).astimezone().timestamp()
"""The fixed clock of the corpus (local time)."""




def check(skills: SkillSet, text: str, intent: str, expected: dict[str, str]) -> str:
    """"" when `text` gives `intent` with the `expected` slots, else what went wrong."""
    answer = skills.answer(text)
    if answer is None:
        return f"{text!r}: not captured (expected {intent})"
    if answer.intent != intent:
        return f"{text!r}: {answer.intent} {dict(answer.slots)} (expected {intent})"
    wrong = {k: answer.slots.get(k) for k, v in expected.items() if answer.slots.get(k) != v}
    if wrong:
        return f"{text!r}: slots {wrong} (expected {expected})"
    return ""


@pytest.fixture(scope="module")
def matcher() -> IntentMatcher:
    return IntentMatcher()


def fresh_skills(matcher: IntentMatcher) -> Iterator[SkillSet]:
    """A skill set per utterance, each with its own empty timer database (in memory)."""
    while True:
        yield SkillSet(matcher, TimerStore(Path(":memory:")), clock=lambda: NOW)


def test_corpus_is_large_and_varied() -> None:
    assert len(UTTERANCES) >= 300
    assert len(parse(ZH)) >= 100
    assert len({intent for _, intent, _ in UTTERANCES}) >= 18
    assert len(GENERAL) >= 300


def test_requests_give_the_right_intent_and_slots(matcher: IntentMatcher) -> None:
    sets = fresh_skills(matcher)
    failures = [problem for (text, intent, expected), skills in zip(UTTERANCES, sets, strict=False)
                if (problem := check(skills, text, intent, expected))]
    accuracy = 1 - len(failures) / len(UTTERANCES)
    print(f"intent and slots right: {accuracy:.1%} of {len(UTTERANCES)}")
    assert accuracy >= 0.97, "\n".join(failures)


def test_general_questions_go_to_the_engine(matcher: IntentMatcher) -> None:
    skills = SkillSet(matcher, TimerStore(Path(":memory:")), clock=lambda: NOW)
    captured = [f"{q!r} -> {a.intent} {dict(a.slots)}" for q in GENERAL
                if (a := skills.answer(q)) is not None]
    rate = len(captured) / len(GENERAL)
    print(f"general questions captured: {rate:.1%} of {len(GENERAL)}")
    assert rate <= 0.01, "\n".join(captured)
