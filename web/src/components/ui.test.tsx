import { render, screen } from "@testing-library/react";
import { ApiError } from "../api";
import { ErrorState } from "./ui";

test("error states say what failed, and 404 reads as not available yet", () => {
  const { rerender } = render(<ErrorState error={new ApiError(404, "not_found", "no route")} what="Scores" />);
  expect(screen.getByText("Scores: not available yet")).toBeInTheDocument();
  rerender(<ErrorState error={new ApiError(403, "forbidden", "you may not read members")} what="Members" />);
  expect(screen.getByRole("alert")).toHaveTextContent("You cannot see members");
  rerender(<ErrorState error={new ApiError(500, "internal", "boom")} what="Members" onRetry={() => {}} />);
  expect(screen.getByRole("button", { name: "Try again" })).toBeInTheDocument();
});
