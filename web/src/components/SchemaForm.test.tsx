import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { SchemaForm } from "./SchemaForm";

const schema = {
  type: "object",
  required: ["webhook"],
  properties: {
    webhook: { type: "string", title: "Webhook URL", format: "uri", description: "Where alerts go" },
    threshold: { type: "integer", title: "Threshold", minimum: 1, maximum: 10 },
    mode: { type: "string", enum: ["quiet", "loud"] },
    enabled: { type: "boolean", title: "Enabled" },
    channels: { type: "array", items: { type: "string" } },
  },
};

test("generates a labelled input per property", () => {
  render(<SchemaForm schema={schema} value={{ threshold: 3 }} onSubmit={() => {}} />);
  expect(screen.getByLabelText(/Webhook URL/)).toHaveAttribute("type", "url");
  expect(screen.getByLabelText("Threshold")).toHaveValue(3);
  expect(screen.getByLabelText("mode").tagName).toBe("SELECT");
  expect(screen.getByLabelText("Enabled")).toHaveAttribute("type", "checkbox");
  expect(screen.getByText("Where alerts go")).toBeInTheDocument();
});

test("submits typed values and refuses out-of-range numbers", async () => {
  const onSubmit = vi.fn();
  render(<SchemaForm schema={schema} value={{}} onSubmit={onSubmit} />);
  await userEvent.type(screen.getByLabelText(/Webhook URL/), "https://hooks.example/x");
  await userEvent.type(screen.getByLabelText("Threshold"), "42");
  await userEvent.click(screen.getByRole("button", { name: "Save settings" }));
  // The browser's own constraint check stops it (max from the schema).
  expect(screen.getByLabelText("Threshold")).toBeInvalid();
  expect(onSubmit).not.toHaveBeenCalled();
  await userEvent.clear(screen.getByLabelText("Threshold"));
  await userEvent.type(screen.getByLabelText("Threshold"), "4");
  await userEvent.type(screen.getByLabelText("channels"), "a, b");
  await userEvent.click(screen.getByLabelText("Enabled"));
  await userEvent.click(screen.getByRole("button", { name: "Save settings" }));
  expect(onSubmit).toHaveBeenCalledWith({ webhook: "https://hooks.example/x", threshold: 4, enabled: true, channels: ["a", "b"] });
});
