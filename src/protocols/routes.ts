import type { Route } from "../http/app.js";
import { requestTarget } from "../http/params.js";
import { routeItemStream } from "./item-stream/routes.js";
import { routeItems } from "./items/routes.js";
import { routeQuery } from "./query/routes.js";
import { routeSchemas } from "./schemas/routes.js";

/** Every resource the server has, by the first segment of its path. */
export const route: Route = (ctx, req, res, requestId) => {
  const target = requestTarget(req);
  if (target.pathname.startsWith("/items/")) return routeItems(ctx, req, res, requestId, target);
  if (target.pathname.startsWith("/query")) return routeQuery(ctx, req, res, requestId, target);
  if (target.pathname.startsWith("/schemas")) return routeSchemas(ctx, req, res, requestId, target);
  return routeItemStream(ctx, req, res, requestId, target);
};
