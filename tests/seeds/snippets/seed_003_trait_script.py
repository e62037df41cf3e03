import os
from twilio.rest import Client
from twilio.rest.memory.v1 import ProfileList

account_sid = os.environ["TWILIO_ACCOUNT_SID"]
auth_token = os.environ["TWILIO_AUTH_TOKEN"]
client = Client(account_sid, auth_token, http_client=tac.sandbox.twilio_http_client())
profile_traits = client.memory.v1.profiles(
    "mem_store_00000000000000000000000000",
    "mem_profile_00000000000000000000000000",
).patch(profile_patch=ProfileList.ProfilePatch({"traits": {"Contact": {"language": "spanish"}}}))
print(profile_traits.message)
