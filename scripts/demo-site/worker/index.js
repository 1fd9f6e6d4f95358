// The user worker: answers /api/hello itself and serves everything else
// from the static assets bound as ASSETS.
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/api/hello") {
      return Response.json({ hello: "from acme-site" });
    }
    return env.ASSETS.fetch(request);
  },
};
