"""Who is who in the emulator's Web API: ``auth.test`` (the bot), ``users.info`` and the
``usergroups.*`` methods."""

from __future__ import annotations

from starlette.requests import Request

from sandbox.slack.params import ApiError, Params, find_user
from sandbox.slack.responses import as_bool
from sandbox.slack.state import SlackState


async def auth_test(state: SlackState, params: Params, request: Request) -> Params:
    team, bot = state.team, state.bot
    return {
        "url": f"https://{team.domain}.slack.com/",
        "team": team.name,
        "user": bot.name,
        "team_id": team.id,
        "user_id": bot.user_id,
        "bot_id": bot.bot_id,
        "is_enterprise_install": False,
    }


async def user_info(state: SlackState, params: Params, request: Request) -> Params:
    user = find_user(state, params)
    return {
        "user": {
            "id": user.id,
            "team_id": state.team.id,
            "name": user.name,
            "real_name": user.real_name,
            "is_bot": user.is_bot,
            "deleted": False,
            "tz": user.tz,
            "profile": {"real_name": user.real_name, "display_name": user.name},
        }
    }


async def usergroups(state: SlackState, params: Params, request: Request) -> Params:
    groups = state.usergroups.values()
    with_users = as_bool(params.get("include_users"))
    return {
        "usergroups": [
            {"id": g.id, "handle": g.handle, "name": g.name}
            | ({"users": list(g.users)} if with_users else {})
            for g in groups
        ]
    }


async def usergroup_users(state: SlackState, params: Params, request: Request) -> Params:
    group = state.usergroups.get(str(params.get("usergroup", "")))
    if group is None:
        raise ApiError("no_such_subteam")
    return {"users": list(group.users)}
