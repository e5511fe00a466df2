// A middleware factory, as frameworks write them: the middleware is a named function expression.
exports.logger = function (prefix) {
  return function middleware(req, res, next) {
    req.prefix = prefix;
    next();
  };
};
