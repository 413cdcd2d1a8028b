#!/usr/bin/env python3
"""Users and tokens of a deployed stack's Cognito user pool (the default identity
provider, created when JwtIssuer is empty), for the first requests against it.

  cognito.py user EMAIL [--admin]   create a confirmed user with a generated password
                                    (printed once), in the `admin` group with --admin
  cognito.py token EMAIL            print an ID token for EMAIL (password from the
                                    PASSWORD variable, else asked for)

The pool and its app client come from the stack's outputs (UserPoolId, UserPoolClientId;
STACK names the stack, default samconfig.toml's `stockhold`), or from USER_POOL_ID and
USER_POOL_CLIENT_ID. Tokens come from ADMIN_USER_PASSWORD_AUTH: a server-side flow that
needs the caller's AWS credentials (cognito-idp:AdminInitiateAuth), so no browser, hosted
UI domain or callback URL is needed, and nobody without those credentials can use it.
AWS_ENDPOINT_URL points every call elsewhere (the tests use moto).
"""
import getpass
import json
import os
import secrets
import string
import sys

import boto3


def pool_and_client():
    pool, client = os.environ.get("USER_POOL_ID"), os.environ.get("USER_POOL_CLIENT_ID")
    if pool and client:
        return pool, client
    stack = os.environ.get("STACK", "stockhold")
    outputs = boto3.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])
    found = {o["OutputKey"]: o["OutputValue"] for o in outputs}
    if "UserPoolId" not in found:
        sys.exit(f"cognito: stack {stack} has no user pool (it trusts JwtIssuer; make users there)")
    return found["UserPoolId"], found["UserPoolClientId"]


def new_password():
    # The pool's policy: at least 12 characters with upper, lower, digits and a symbol.
    alphabet = string.ascii_letters + string.digits
    core = "".join(secrets.choice(alphabet) for _ in range(20))
    return core + secrets.choice(string.ascii_uppercase) + secrets.choice(string.digits) + "!a"


def create_user(idp, pool, email, admin, password=None):
    password = password or new_password()
    idp.admin_create_user(
        UserPoolId=pool,
        Username=email,
        UserAttributes=[{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}],
        MessageAction="SUPPRESS",
    )
    idp.admin_set_user_password(UserPoolId=pool, Username=email, Password=password, Permanent=True)
    if admin:
        idp.admin_add_user_to_group(UserPoolId=pool, Username=email, GroupName="admin")
    return password


def id_token(idp, pool, client, email, password):
    out = idp.admin_initiate_auth(
        UserPoolId=pool,
        ClientId=client,
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": email, "PASSWORD": password},
    )
    return out["AuthenticationResult"]["IdToken"]


def main(argv):
    if len(argv) < 2 or argv[0] not in ("user", "token"):
        sys.exit(__doc__)
    idp = boto3.client("cognito-idp")
    pool, client = pool_and_client()
    email = argv[1]
    if argv[0] == "user":
        password = create_user(idp, pool, email, "--admin" in argv[2:])
        print(json.dumps({"email": email, "password": password, "admin": "--admin" in argv[2:]}))
    else:
        password = os.environ.get("PASSWORD") or getpass.getpass(f"password of {email}: ")
        print(id_token(idp, pool, client, email, password))


if __name__ == "__main__":
    main(sys.argv[1:])
